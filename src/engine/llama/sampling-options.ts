import { TokenBias, type LlamaModel, type SequenceEvaluateOptions, type Token } from 'node-llama-cpp';
import type { SamplingParams } from '../engine.js';

/** How many recent tokens the repetition, presence and frequency penalties look at (llama.cpp's penalty_last_n). */
export const PENALTY_WINDOW = 64;

export interface SamplingPlan {
  options: SequenceEvaluateOptions;
  /** Whether the options change from token to token (penalty history, min_tokens' ban), so the sampler is re-configured. */
  dynamic: boolean;
  /** Called with each generated token, so the penalties see the recent history. */
  observe(token: Token): void;
}

/**
 * Maps OpenAI/vLLM sampling parameters onto node-llama-cpp's sampler options.
 * - `logit_bias` is additive on logits, as OpenAI defines it (llama.cpp's logit-bias sampler).
 * - End-of-generation tokens are banned while fewer than `minTokens` were generated, and always with `ignoreEos`.
 *   node-llama-cpp's public `TokenBias.set` refuses to bias EOG tokens, so the ban writes the bias map directly.
 * - `softBans` (under a grammar): a -100 bias is a very large finite penalty instead of a ban, so a token stays
 *   possible when the grammar allows nothing else; llama.cpp would otherwise sample a token the grammar refuses, and
 *   node-llama-cpp fails outside any request (the process dies).
 */
export function planSampling(
  model: LlamaModel,
  eogTokens: readonly Token[],
  sampling: SamplingParams,
  promptTokens: readonly Token[],
  limits: { minTokens: number; ignoreEos: boolean; softBans?: boolean },
): SamplingPlan {
  const recent: Token[] = promptTokens.slice(-PENALTY_WINDOW) as Token[];
  const penalties =
    sampling.repetitionPenalty !== 1 || sampling.presencePenalty !== 0 || sampling.frequencyPenalty !== 0;
  let generated = 0;

  const ban = limits.softBans ? SOFT_BAN : -Infinity;
  const base = sampling.logitBias.size > 0 ? biasMap(model, sampling.logitBias, [], ban) : undefined;
  const banned = limits.ignoreEos || limits.minTokens > 0 ? biasMap(model, sampling.logitBias, eogTokens, ban) : undefined;
  let tokenBias: SequenceEvaluateOptions['tokenBias'];
  if (limits.ignoreEos) tokenBias = banned;
  else if (banned) {
    const after = base ?? new TokenBias(model.tokenizer);
    tokenBias = () => (generated < limits.minTokens ? banned : after);
  }
  else tokenBias = base;

  const options: SequenceEvaluateOptions = {
    temperature: sampling.temperature,
    topK: sampling.topK,
    topP: sampling.topP,
    minP: sampling.minP,
    seed: sampling.seed ?? Math.floor(Math.random() * 0xffffffff),
    tokenBias,
    repeatPenalty: penalties
      ? {
          punishTokens: () => recent,
          maxPunishTokens: PENALTY_WINDOW,
          penalty: sampling.repetitionPenalty,
          presencePenalty: sampling.presencePenalty,
          frequencyPenalty: sampling.frequencyPenalty,
        }
      : undefined,
    yieldEogToken: false,
  };
  return {
    options,
    dynamic: penalties || typeof tokenBias === 'function',
    observe(token) {
      generated++;
      if (penalties) {
        recent.push(token);
        if (recent.length > PENALTY_WINDOW) recent.shift();
      }
    },
  };
}

/** A logit penalty no competing token overcomes, yet finite (logits are tens at most). */
const SOFT_BAN = -1e4;

function biasMap(model: LlamaModel, logitBias: ReadonlyMap<number, number>, banned: readonly Token[], ban: number): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  const entries = (bias as unknown as { _biases: Map<Token, number> })._biases;
  for (const [token, value] of logitBias) entries.set(token as Token, value <= -100 ? ban : value);
  for (const token of banned) entries.set(token, ban);
  return bias;
}


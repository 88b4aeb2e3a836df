import type { Prompt } from '../../engine/engine.js';
import type { CompletionRequest } from '../../protocol/openai/completions.js';
import { invalidRequest } from '../errors.js';
import type { InferenceRequest, TranslateContext } from '../inference/inference-request.js';
import { resolveOutputConstraint } from './output-constraint.js';
import { resolveGeneration } from './resolve-generation.js';

/** OpenAI's legacy completions default to 16 output tokens (vLLM does the same). */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

export function translateCompletionRequest(wire: CompletionRequest, context: TranslateContext): InferenceRequest {
  if (wire.suffix) {
    throw invalidRequest('suffix is not supported: the served models have no fill-in-the-middle tokens.', 'suffix', 'unsupported_parameter');
  }
  const n = wire.n ?? 1;
  if (wire.best_of !== null && wire.best_of !== undefined && wire.best_of !== n) {
    throw invalidRequest('best_of other than n is not supported.', 'best_of', 'unsupported_parameter');
  }
  return {
    model: wire.model,
    prompts: toPrompts(wire.prompt),
    n,
    ...resolveGeneration(wire, context, {
      maxTokens: wire.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS,
      logprobs: wire.logprobs ?? null,
      echo: wire.echo ?? false,
      constraint: resolveOutputConstraint(wire),
    }),
  };
}

function toPrompts(prompt: CompletionRequest['prompt']): Prompt[] {
  if (typeof prompt === 'string') return [{ kind: 'text', text: prompt }];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [{ kind: 'tokens', tokens: prompt as number[] }];
  if (prompt.length > 16) throw invalidRequest('At most 16 prompts may be sent in one request.', 'prompt');
  return (prompt as Array<string | number[]>).map((item) =>
    typeof item === 'string' ? { kind: 'text', text: item } : { kind: 'tokens', tokens: item },
  );
}

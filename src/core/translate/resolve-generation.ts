import type { GenerateRequest, OutputConstraint } from '../../engine/engine.js';
import { invalidRequest } from '../errors.js';
import type { InferenceRequest, TranslateContext } from '../inference/inference-request.js';
import { resolveSampling, resolveStop, type WireSampling } from './sampling.js';

/** Interactive requests run before batch work. */
export const INTERACTIVE_PRIORITY = 0;

/** The fields chat and completions share on the wire. */
export interface WireGeneration extends WireSampling {
  model: string;
  min_tokens?: number | null;
  ignore_eos?: boolean | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  cache_salt?: string | null;
}

/** What differs between the two endpoints, already resolved by their translators. */
export interface GenerationSpecifics {
  maxTokens: number | null;
  logprobs: number | null;
  echo: boolean;
  constraint: OutputConstraint | null;
}

/**
 * The generation settings and streaming flags shared by chat and completions, with their checks:
 * `stream_options` only with `stream`, `min_tokens` not above `max_tokens`.
 */
export function resolveGeneration(
  wire: WireGeneration,
  context: TranslateContext,
  specifics: GenerationSpecifics,
): { generation: Omit<GenerateRequest, 'prompt'>; stream: boolean; includeUsage: InferenceRequest['includeUsage'] } {
  const stream = wire.stream ?? false;
  if (wire.stream_options && !stream) {
    throw invalidRequest('stream_options is only allowed when stream is true.', 'stream_options');
  }
  const minTokens = wire.min_tokens ?? 0;
  if (specifics.maxTokens !== null && minTokens > specifics.maxTokens) {
    throw invalidRequest('min_tokens must not exceed max_tokens.', 'min_tokens');
  }
  return {
    generation: {
      model: wire.model,
      sampling: resolveSampling(wire),
      maxTokens: specifics.maxTokens,
      minTokens,
      ignoreEos: wire.ignore_eos ?? false,
      stop: resolveStop(wire.stop),
      logprobs: specifics.logprobs,
      echo: specifics.echo,
      priority: INTERACTIVE_PRIORITY,
      deadline: context.now + context.requestTimeoutMs,
      cacheScope: context.cacheScope,
      cacheSalt: wire.cache_salt ?? null,
      constraint: specifics.constraint,
    },
    stream,
    includeUsage: stream && (wire.stream_options?.include_usage ?? false),
  };
}

import type { EngineEvent, GenerateRequest, Prompt } from '../engine/engine.js';

/**
 * The contract of a model served over HTTP by another server: the engine contract for one model (the request's
 * `model` is ignored: an upstream serves the one model it was configured with). Each API kind (OpenAI-compatible,
 * Anthropic) is one folder under upstream/ implementing it, built by `createUpstream`.
 *
 * Failures: before the first event, `generate` throws (an `UpstreamError` for the upstream's failures, so that the
 * router may retry or fail over); once an event was yielded, a failure ends the stream with an `end` event that
 * carries the error and the usage of what was streamed (estimated where the upstream did not say), as engines do.
 * The caller's signal aborts the HTTP request.
 */
export interface Upstream {
  /** `<kind> <base url> <model>`, for logs and metrics; never holds the key. */
  readonly name: string;
  /** Batches of events, as `Engine.generate`: one batch per network read of the upstream's stream. */
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent[]>;
  /** One L2-normalized vector per input, and the tokens counted (by the upstream, else estimated). */
  embed(inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }>;
  /** An estimate of the prompt's tokens, for admission (see docs/decisions/0012-upstream-token-estimates.md). */
  countPromptTokens(prompt: Prompt): number;
  /** Closes idle connections (at shutdown). */
  close(): void;
}

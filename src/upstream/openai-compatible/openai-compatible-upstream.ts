import type { OpenAIDeploymentConfig } from '../../config/schema.js';
import { AbortedError } from '../../core/errors.js';
import type { EngineEvent, GenerateRequest, Prompt } from '../../engine/engine.js';
import { estimatePromptTokens, estimateTextTokens } from '../estimate-tokens.js';
import { HttpTransport, type TransportResponse } from '../http-transport.js';
import type { Upstream } from '../upstream.js';
import { parseRetryAfter, UpstreamError } from '../upstream-error.js';
import { ChunkDecoder, type WireChunk } from './chunk-decoder.js';
import { readSse } from '../read-sse.js';
import { RequestGuard } from '../request-guard.js';
import { toChatBody, toCompletionBody, type WireBody } from './request-body.js';

/** Upstream error bodies kept for logs, characters. */
const BODY_LIMIT = 4096;

/**
 * A model on an OpenAI-compatible server (vLLM, SGLang, llama-server, OpenAI, Together, another Tokenmill): chat
 * prompts go to `/chat/completions`, text and token prompts to `/completions`, always streamed with usage
 * (`stream_options.include_usage`), whether or not the client streams; embeddings go to `/embeddings`.
 */
export class OpenAICompatibleUpstream implements Upstream {
  readonly name: string;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly transport: HttpTransport;

  constructor(
    private readonly config: OpenAIDeploymentConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.baseUrl = config.base_url.replace(/\/+$/, '');
    this.name = `openai ${this.baseUrl} ${config.model}`;
    this.transport = new HttpTransport(this.baseUrl);
    this.headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (config.api_key !== null) this.headers.authorization = `Bearer ${config.api_key}`;
  }

  countPromptTokens(prompt: Prompt): number {
    return estimatePromptTokens(prompt);
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const chat = request.prompt.kind === 'chat';
    const body = chat ? toChatBody(request, this.config.model) : toCompletionBody(request, this.config.model);
    const guard = this.guard(signal, request.deadline);
    let finished = false;
    try {
      const response = await this.post(chat ? '/chat/completions' : '/completions', body, guard);
      const decoder = new ChunkDecoder();
      let yielded = false;
      let done = false;
      try {
        for await (const data of readSse(response.body)) {
          guard.touch();
          // Read on to the end of the body after [DONE] (no `break`): leaving the loop early would destroy the
          // response, and with it the keep-alive connection.
          if (done) continue;
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const chunk = this.parseChunk(data);
          for (const event of decoder.decode(chunk)) {
            if (!yielded) {
              // Encoders open a choice on this event (the role chunk). Its counts are the estimate; the end event
              // carries the upstream's own.
              yield { type: 'prompt-processed', promptTokens: estimatePromptTokens(request.prompt), cachedTokens: 0 };
              yielded = true;
            }
            yield event;
          }
        }
        if (!done && decoder.finishReason === null) {
          throw new UpstreamError(`${this.name}: the stream ended before its end`, { deployment: this.name, retryable: true });
        }
      } catch (error) {
        const failure = this.failure(error, guard);
        if (!yielded) throw failure;
        yield { type: 'end', finishReason: 'cancelled', usage: this.usage(request.prompt, decoder), error: failure };
        return;
      }
      finished = true;
      yield { type: 'end', finishReason: decoder.finishReason ?? 'stop', usage: this.usage(request.prompt, decoder) };
    } catch (error) {
      throw this.failure(error, guard);
    } finally {
      guard.dispose(!finished);
    }
  }

  async embed(inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }> {
    const guard = this.guard(signal, this.now() + this.config.total_timeout_ms);
    try {
      const response = await this.post('/embeddings', { model: this.config.model, input: inputs, encoding_format: 'float' }, guard);
      const parsed = JSON.parse(await response.text()) as { data?: Array<{ index?: number; embedding?: number[] }>; usage?: { prompt_tokens?: number } };
      const data = [...(parsed.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      if (data.length !== inputs.length || data.some((item) => !Array.isArray(item.embedding))) {
        throw new UpstreamError(`${this.name}: the embeddings answer does not hold one vector per input`, { deployment: this.name, retryable: false });
      }
      const estimated = inputs.reduce<number>((sum, input) => sum + (typeof input === 'string' ? estimateTextTokens(input) : input.length), 0);
      return { vectors: data.map((item) => normalize(item.embedding!)), promptTokens: parsed.usage?.prompt_tokens ?? estimated };
    } catch (error) {
      throw this.failure(error, guard);
    } finally {
      guard.dispose(false);
    }
  }

  private guard(signal: AbortSignal, deadline: number): RequestGuard {
    return new RequestGuard(signal, this.config.timeout_ms, Math.min(this.config.total_timeout_ms, deadline - this.now()));
  }

  /** POSTs a JSON body; an answer other than 2xx becomes an `UpstreamError` holding its status and body. */
  private async post(path: string, body: WireBody, guard: RequestGuard): Promise<TransportResponse> {
    const response = await this.transport.post(path, this.headers, JSON.stringify(body), guard.signal);
    guard.touch();
    if (response.status >= 200 && response.status < 300) return response;
    const text = this.scrub((await response.text().catch(() => '')).slice(0, BODY_LIMIT));
    throw new UpstreamError(`${this.name} answered ${response.status}`, {
      deployment: this.name,
      status: response.status,
      body: text,
      retryAfterMs: parseRetryAfter({ get: response.header }, this.now()),
    });
  }

  close(): void {
    this.transport.close();
  }

  private parseChunk(data: string): WireChunk {
    let chunk: WireChunk;
    try {
      chunk = JSON.parse(data) as WireChunk;
    } catch {
      throw new UpstreamError(`${this.name}: a stream chunk is not JSON`, { deployment: this.name, body: this.scrub(data.slice(0, BODY_LIMIT)), retryable: false });
    }
    if (chunk.error !== undefined && chunk.error !== null) {
      // An error the upstream reported in the stream, after its 200: its body says what; not retried.
      throw new UpstreamError(`${this.name} reported an error in its stream`, { deployment: this.name, body: this.scrub(data.slice(0, BODY_LIMIT)), retryable: false });
    }
    return chunk;
  }

  /** What a thrown error means: the caller left, a timer fired, the connection failed, or the upstream's own error. */
  private failure(error: unknown, guard: RequestGuard): unknown {
    if (error instanceof UpstreamError || error instanceof AbortedError) return error;
    if (guard.reason === 'client') return new AbortedError();
    if (guard.reason === 'idle' || guard.reason === 'total') {
      const limit = guard.reason === 'idle' ? `${this.config.timeout_ms} ms without an answer` : 'its total time limit';
      return new UpstreamError(`${this.name} timed out (${limit})`, { deployment: this.name, timedOut: true, retryable: true, cause: error });
    }
    const failed = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const detail = failed.code ?? failed.cause?.code ?? failed.message;
    return new UpstreamError(`${this.name}: connection failed (${detail})`, { deployment: this.name, retryable: true, cause: error });
  }

  /** The upstream's usage, else the estimate (docs/decisions/0012-upstream-token-estimates.md). */
  private usage(prompt: Prompt, decoder: ChunkDecoder) {
    return decoder.usage ?? { promptTokens: estimatePromptTokens(prompt), cachedTokens: 0, completionTokens: Math.ceil(decoder.outputCharacters / 4) };
  }

  /** Upstream bodies may echo the key that was sent (e.g. "Incorrect API key provided: sk-..."). */
  private scrub(text: string): string {
    return this.config.api_key === null ? text : text.split(this.config.api_key).join('[redacted]');
  }
}

function normalize(vector: number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return norm === 0 ? vector : vector.map((value) => value / norm);
}

import type { AnthropicDeploymentConfig } from '../../config/schema.js';
import { AbortedError, invalidRequest, TokenmillError } from '../../core/errors.js';
import type { EngineEvent, GenerateRequest, Prompt, Usage } from '../../engine/engine.js';
import { estimatePromptTokens } from '../estimate-tokens.js';
import { HttpTransport, type TransportResponse } from '../http-transport.js';
import { readSse } from '../read-sse.js';
import { RequestGuard } from '../request-guard.js';
import type { Upstream } from '../upstream.js';
import { parseRetryAfter, UpstreamError } from '../upstream-error.js';
import { MessageStreamDecoder, StreamErrorEvent, statusOfErrorType, type UpstreamStreamEvent } from './message-stream-decoder.js';
import { type MessagesBody, toMessagesBody } from './request-body.js';

/** Upstream error bodies kept for logs, characters. */
const BODY_LIMIT = 4096;

/**
 * A model on a server of Anthropic's Messages API (Anthropic, or another Tokenmill's `/v1/messages`): every chat
 * request is `POST {base_url}/v1/messages`, always streamed (its events carry the usage), with `x-api-key` and
 * `anthropic-version`. Anthropic has no completions and no embeddings: those are refused as invalid requests.
 */
export class AnthropicUpstream implements Upstream {
  readonly name: string;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly transport: HttpTransport;

  constructor(
    private readonly config: AnthropicDeploymentConfig,
    /** Tokens of context the catalog gives the model (caps the default `max_tokens`). */
    private readonly contextSize: number,
    private readonly now: () => number = Date.now,
  ) {
    this.baseUrl = config.base_url.replace(/\/+$/, '');
    this.name = `anthropic ${this.baseUrl} ${config.model}`;
    this.transport = new HttpTransport(this.baseUrl);
    this.headers = { 'content-type': 'application/json', accept: 'text/event-stream', 'anthropic-version': config.anthropic_version };
    if (config.api_key !== null) this.headers['x-api-key'] = config.api_key;
  }

  countPromptTokens(prompt: Prompt): number {
    return estimatePromptTokens(prompt);
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const body = toMessagesBody(request, { model: this.config.model, defaultMaxTokens: this.config.default_max_tokens, contextSize: this.contextSize });
    const guard = new RequestGuard(signal, this.config.timeout_ms, Math.min(this.config.total_timeout_ms, request.deadline - this.now()));
    let finished = false;
    try {
      const response = await this.post(body, guard);
      const decoder = new MessageStreamDecoder();
      let yielded = false;
      // Held back until the first content (as the OpenAI-compatible upstream does), so that an upstream that fails
      // after its 200 but before any token can still be retried by the router.
      const opening = (): EngineEvent => {
        const prompt = decoder.promptUsage;
        const event: Extract<EngineEvent, { type: 'prompt-processed' }> = {
          type: 'prompt-processed',
          promptTokens: prompt?.promptTokens ?? estimatePromptTokens(request.prompt),
          cachedTokens: prompt?.cachedTokens ?? 0,
        };
        // What the breakpoint covers, so that Anthropic encoders report the cache write.
        if (request.cachePin && prompt) event.pinnedTokens = prompt.cachedTokens + prompt.cacheWriteTokens;
        return event;
      };
      try {
        for await (const data of readSse(response.body)) {
          guard.touch();
          // Read on to the end of the body (no `break`): leaving early would destroy the keep-alive connection.
          if (decoder.stopped) continue;
          for (const event of decoder.decode(this.parseEvent(data))) {
            if (!yielded) {
              yield opening();
              yielded = true;
            }
            yield event;
          }
        }
        if (!decoder.stopped) {
          throw new UpstreamError(`${this.name}: the stream ended before message_stop`, { deployment: this.name, retryable: true });
        }
      } catch (error) {
        const failure = this.failure(error, guard);
        if (!yielded) throw failure;
        yield { type: 'end', finishReason: 'cancelled', usage: this.usage(request.prompt, decoder), error: failure };
        return;
      }
      finished = true;
      if (!yielded) yield opening();
      const end: Extract<EngineEvent, { type: 'end' }> = { type: 'end', finishReason: decoder.finishReason ?? 'stop', usage: this.usage(request.prompt, decoder) };
      if (end.finishReason === 'stop' && decoder.stopSequence !== null) end.stopSequence = decoder.stopSequence;
      yield end;
    } catch (error) {
      throw this.failure(error, guard);
    } finally {
      guard.dispose(!finished);
    }
  }

  async embed(): Promise<{ vectors: number[][]; promptTokens: number }> {
    throw invalidRequest('This model is served by an Anthropic Messages API, which has no embeddings.', 'model', 'model_not_supported');
  }

  close(): void {
    this.transport.close();
  }

  /** POSTs the body; an answer other than 2xx becomes an `UpstreamError` holding its status and (scrubbed) body. */
  private async post(body: MessagesBody, guard: RequestGuard): Promise<TransportResponse> {
    const response = await this.transport.post('/v1/messages', this.headers, JSON.stringify(body), guard.signal);
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

  private parseEvent(data: string): UpstreamStreamEvent {
    try {
      const parsed = JSON.parse(data) as UpstreamStreamEvent;
      if (parsed !== null && typeof parsed === 'object' && typeof parsed.type === 'string') return parsed;
    } catch {
      // Reported below.
    }
    throw new UpstreamError(`${this.name}: a stream event is not an event`, { deployment: this.name, body: this.scrub(data.slice(0, BODY_LIMIT)), retryable: false });
  }

  /** What a thrown error means: the caller left, a timer fired, the connection failed, or the upstream's own error. */
  private failure(error: unknown, guard: RequestGuard): unknown {
    if (error instanceof UpstreamError || error instanceof AbortedError) return error;
    if (error instanceof StreamErrorEvent) {
      // An error event after the 200 (overloaded_error mostly): as retryable as the status Anthropic gives its type.
      const body = this.scrub(JSON.stringify({ type: 'error', error: { type: error.errorType, message: error.message } }));
      return new UpstreamError(`${this.name} reported ${error.errorType} in its stream`, { deployment: this.name, status: statusOfErrorType(error.errorType), body });
    }
    if (guard.reason === 'client') return new AbortedError();
    if (guard.reason === 'idle' || guard.reason === 'total') {
      const limit = guard.reason === 'idle' ? `${this.config.timeout_ms} ms without an answer` : 'its total time limit';
      return new UpstreamError(`${this.name} timed out (${limit})`, { deployment: this.name, timedOut: true, retryable: true, cause: error });
    }
    if (error instanceof TokenmillError) return error;
    const failed = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const detail = failed.code ?? failed.cause?.code ?? failed.message;
    return new UpstreamError(`${this.name}: connection failed (${detail})`, { deployment: this.name, retryable: true, cause: error });
  }

  /** The upstream's usage, else the estimate (docs/decisions/0012-upstream-token-estimates.md). */
  private usage(prompt: Prompt, decoder: MessageStreamDecoder): Usage {
    return decoder.usage ?? { promptTokens: estimatePromptTokens(prompt), cachedTokens: 0, completionTokens: Math.ceil(decoder.outputCharacters / 4) };
  }

  /** Upstream bodies may echo the key that was sent. */
  private scrub(text: string): string {
    return this.config.api_key === null ? text : text.split(this.config.api_key).join('[redacted]');
  }
}

import type { AnthropicDeploymentConfig } from '../../config/schema.js';
import { invalidRequest } from '../../core/errors.js';
import type { EngineEvent, GenerateRequest, Prompt, Usage } from '../../engine/engine.js';
import { estimatePromptTokens, estimateUsage } from '../estimate-tokens.js';
import { UpstreamSseReader } from '../read-sse.js';
import type { RequestGuard } from '../request-guard.js';
import type { Upstream } from '../upstream.js';
import { UpstreamError } from '../upstream-error.js';
import { UpstreamHttpClient } from '../upstream-http-client.js';
import { MessageStreamDecoder, StreamErrorEvent, statusOfErrorType, type UpstreamStreamEvent } from './message-stream-decoder.js';
import { toMessagesBody } from './request-body.js';

/**
 * A model on a server of Anthropic's Messages API (Anthropic, or another Tokenmill's `/v1/messages`): every chat
 * request is `POST {base_url}/v1/messages`, always streamed (its events carry the usage), with `x-api-key` and
 * `anthropic-version`. Anthropic has no completions and no embeddings: those are refused as invalid requests.
 */
export class AnthropicUpstream implements Upstream {
  readonly name: string;
  private readonly http: UpstreamHttpClient;

  constructor(
    private readonly config: AnthropicDeploymentConfig,
    /** Tokens of context the catalog gives the model (caps the default `max_tokens`). */
    private readonly contextSize: number,
    now: () => number = Date.now,
  ) {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream', 'anthropic-version': config.anthropic_version };
    if (config.api_key !== null) headers['x-api-key'] = config.api_key;
    this.http = new UpstreamHttpClient('anthropic', config, headers, now);
    this.name = this.http.name;
  }

  countPromptTokens(prompt: Prompt): number {
    return estimatePromptTokens(prompt);
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent[]> {
    const body = toMessagesBody(request, { model: this.config.model, defaultMaxTokens: this.config.default_max_tokens, contextSize: this.contextSize });
    const guard = this.http.guard(signal, request.deadline);
    let finished = false;
    let reader: UpstreamSseReader | null = null;
    try {
      const response = await this.http.post('/v1/messages', body, guard);
      reader = new UpstreamSseReader(response.body, guard);
      const decoder = new MessageStreamDecoder();
      /** Whether an event came: from then on a failure ends the stream rather than being thrown (no retry). */
      let opened = false;
      /** The events of the chunk being read (the last batch also takes the end event). */
      let batch: EngineEvent[] = [];
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
        for (let payloads = await reader.next(); payloads !== null; payloads = await reader.next()) {
          for (const data of payloads) {
            for (const event of decoder.decode(this.parseEvent(data))) {
              if (!opened) {
                batch.push(opening());
                opened = true;
              }
              batch.push(event);
            }
            if (decoder.stopped) break;
          }
          // The answer's last events wait for the end event, to go in one batch with it; the body's end is read in
          // the background.
          if (decoder.stopped) {
            reader.handOver();
            break;
          }
          if (batch.length > 0) {
            yield batch;
            batch = [];
          }
        }
        if (!decoder.stopped) {
          throw new UpstreamError(`${this.name}: the stream ended before message_stop`, { deployment: this.name, retryable: true });
        }
      } catch (error) {
        const failure = this.failure(error, guard);
        if (!opened) throw failure;
        batch.push({ type: 'end', finishReason: 'cancelled', usage: this.usage(request.prompt, decoder), error: failure });
        yield batch;
        return;
      }
      finished = true;
      if (!opened) batch.push(opening());
      const end: Extract<EngineEvent, { type: 'end' }> = { type: 'end', finishReason: decoder.finishReason ?? 'stop', usage: this.usage(request.prompt, decoder) };
      if (end.finishReason === 'stop' && decoder.stopSequence !== null) end.stopSequence = decoder.stopSequence;
      batch.push(end);
      yield batch;
    } catch (error) {
      throw this.failure(error, guard);
    } finally {
      await reader?.close();
      guard.dispose(!finished);
    }
  }

  async embed(): Promise<{ vectors: number[][]; promptTokens: number }> {
    throw invalidRequest('This model is served by an Anthropic Messages API, which has no embeddings.', 'model', 'model_not_supported');
  }

  close(): void {
    this.http.close();
  }

  private parseEvent(data: string): UpstreamStreamEvent {
    try {
      const parsed = JSON.parse(data) as UpstreamStreamEvent;
      if (parsed !== null && typeof parsed === 'object' && typeof parsed.type === 'string') return parsed;
    } catch {
      // Reported below.
    }
    throw this.http.badData('a stream event is not an event', data);
  }

  /** What a thrown error means: Anthropic's error events, else as for every upstream kind. */
  private failure(error: unknown, guard: RequestGuard): unknown {
    if (error instanceof StreamErrorEvent) {
      // An error event after the 200 (overloaded_error mostly): as retryable as the status Anthropic gives its type.
      const body = this.http.scrub(JSON.stringify({ type: 'error', error: { type: error.errorType, message: error.message } }));
      return new UpstreamError(`${this.name} reported ${error.errorType} in its stream`, { deployment: this.name, status: statusOfErrorType(error.errorType), body });
    }
    return this.http.failure(error, guard);
  }

  /** The upstream's usage, else the estimate (docs/decisions/0012-upstream-token-estimates.md). */
  private usage(prompt: Prompt, decoder: MessageStreamDecoder): Usage {
    return decoder.usage ?? estimateUsage(prompt, decoder.outputCharacters);
  }
}

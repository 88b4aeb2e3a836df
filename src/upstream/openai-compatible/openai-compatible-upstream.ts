import type { OpenAIDeploymentConfig } from '../../config/schema.js';
import type { EngineEvent, GenerateRequest, Prompt } from '../../engine/engine.js';
import { estimatePromptTokens, estimateTextTokens, estimateUsage } from '../estimate-tokens.js';
import type { Upstream } from '../upstream.js';
import { UpstreamError } from '../upstream-error.js';
import { UpstreamHttpClient } from '../upstream-http-client.js';
import { ChunkDecoder, type WireChunk } from './chunk-decoder.js';
import { UpstreamSseReader } from '../read-sse.js';
import { toChatBody, toCompletionBody } from './request-body.js';

/**
 * A model on an OpenAI-compatible server (vLLM, SGLang, llama-server, OpenAI, Together, another Tokenmill): chat
 * prompts go to `/chat/completions`, text and token prompts to `/completions`, always streamed with usage
 * (`stream_options.include_usage`), whether or not the client streams; embeddings go to `/embeddings`.
 */
export class OpenAICompatibleUpstream implements Upstream {
  readonly name: string;
  private readonly http: UpstreamHttpClient;

  constructor(
    private readonly config: OpenAIDeploymentConfig,
    private readonly now: () => number = Date.now,
  ) {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (config.api_key !== null) headers.authorization = `Bearer ${config.api_key}`;
    this.http = new UpstreamHttpClient('openai', config, headers, now);
    this.name = this.http.name;
  }

  countPromptTokens(prompt: Prompt): number {
    return estimatePromptTokens(prompt);
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent[]> {
    const chat = request.prompt.kind === 'chat';
    const body = chat ? toChatBody(request, this.config.model) : toCompletionBody(request, this.config.model);
    const guard = this.http.guard(signal, request.deadline);
    let finished = false;
    let reader: UpstreamSseReader | null = null;
    try {
      const response = await this.http.post(chat ? '/chat/completions' : '/completions', body, guard);
      reader = new UpstreamSseReader(response.body, guard);
      const decoder = new ChunkDecoder();
      /** Whether an event came: from then on a failure ends the stream rather than being thrown (no retry). */
      let opened = false;
      let done = false;
      /** The events of the chunk being read (the last batch also takes the end event). */
      let batch: EngineEvent[] = [];
      try {
        for (let payloads = await reader.next(); payloads !== null; payloads = await reader.next()) {
          for (const data of payloads) {
            if (data === '[DONE]') {
              // Nothing after it counts; the body's end is read in the background.
              done = true;
              reader.handOver();
              break;
            }
            const chunk = this.parseChunk(data);
            for (const event of decoder.decode(chunk)) {
              if (!opened) {
                // Encoders open a choice on this event (the role chunk). Its counts are the estimate; the end event
                // carries the upstream's own.
                batch.push({ type: 'prompt-processed', promptTokens: estimatePromptTokens(request.prompt), cachedTokens: 0 });
                opened = true;
              }
              batch.push(event);
            }
          }
          // The answer's last events wait for the end event, to go in one batch with it.
          if (done) break;
          if (batch.length > 0) {
            yield batch;
            batch = [];
          }
        }
        if (!done && decoder.finishReason === null) {
          throw new UpstreamError(`${this.name}: the stream ended before its end`, { deployment: this.name, retryable: true });
        }
      } catch (error) {
        const failure = this.http.failure(error, guard);
        if (!opened) throw failure;
        batch.push({ type: 'end', finishReason: 'cancelled', usage: this.usage(request.prompt, decoder), error: failure });
        yield batch;
        return;
      }
      finished = true;
      batch.push({ type: 'end', finishReason: decoder.finishReason ?? 'stop', usage: this.usage(request.prompt, decoder) });
      yield batch;
    } catch (error) {
      throw this.http.failure(error, guard);
    } finally {
      await reader?.close();
      guard.dispose(!finished);
    }
  }

  async embed(inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }> {
    const guard = this.http.guard(signal, this.now() + this.config.total_timeout_ms);
    try {
      const response = await this.http.post('/embeddings', { model: this.config.model, input: inputs, encoding_format: 'float' }, guard);
      const parsed = JSON.parse(await response.text()) as { data?: Array<{ index?: number; embedding?: number[] }>; usage?: { prompt_tokens?: number } };
      const data = [...(parsed.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      if (data.length !== inputs.length || data.some((item) => !Array.isArray(item.embedding))) {
        throw new UpstreamError(`${this.name}: the embeddings answer does not hold one vector per input`, { deployment: this.name, retryable: false });
      }
      const estimated = inputs.reduce<number>((sum, input) => sum + (typeof input === 'string' ? estimateTextTokens(input) : input.length), 0);
      return { vectors: data.map((item) => normalize(item.embedding!)), promptTokens: parsed.usage?.prompt_tokens ?? estimated };
    } catch (error) {
      throw this.http.failure(error, guard);
    } finally {
      guard.dispose(false);
    }
  }

  close(): void {
    this.http.close();
  }

  private parseChunk(data: string): WireChunk {
    let chunk: WireChunk;
    try {
      chunk = JSON.parse(data) as WireChunk;
    } catch {
      throw this.http.badData('a stream chunk is not JSON', data);
    }
    if (chunk.error !== undefined && chunk.error !== null) {
      // An error the upstream reported in the stream, after its 200: its body says what; not retried.
      throw this.http.badData('reported an error in its stream', data);
    }
    return chunk;
  }

  /** The upstream's usage, else the estimate (docs/decisions/0012-upstream-token-estimates.md). */
  private usage(prompt: Prompt, decoder: ChunkDecoder) {
    return decoder.usage ?? estimateUsage(prompt, decoder.outputCharacters);
  }
}

function normalize(vector: number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return norm === 0 ? vector : vector.map((value) => value / norm);
}

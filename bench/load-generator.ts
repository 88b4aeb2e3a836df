import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { ownCpuMs } from './process-cpu.js';
import { SseParser } from './sse-parser.js';
import { summarize, type Summary } from './stats.js';

/** A closed-loop load: `concurrency` clients, each sending its next request as soon as its last one ended. */
export interface LoadOptions {
  /** Server origin, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Request path, e.g. /v1/chat/completions. */
  path: string;
  /** Clients sending requests back to back. */
  concurrency: number;
  /** Requests in all, spread over the clients. */
  requests: number;
  /** JSON body of the index-th request (0-based). It must ask for a stream (`stream: true`). */
  body: (index: number) => unknown;
  /** Deadline of each request from sending to the end of its stream, ms. */
  timeoutMs: number;
  /**
   * Whether clients reuse connections (default true). false: a connection per request, with `connection: close`
   * (llama-server dropped about a third of new connections that did not say so, unanswered).
   */
  keepAlive?: boolean;
}

/** What one streaming request saw, timed on the client. */
export interface RequestSample {
  index: number;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  /** Why the request failed; null when it succeeded. */
  error: string | null;
  /** ms from sending the request to the first chunk with non-empty content; null when none came. */
  ttftMs: number | null;
  /** ms between consecutive chunks with non-empty content. */
  interTokenMs: number[];
  /** Tokens, from the stream's usage chunk; null when the stream carried none. */
  completionTokens: number | null;
  promptTokens: number | null;
  /** ms from sending the request to the end of its stream. */
  durationMs: number;
}

export interface LoadResult {
  concurrency: number;
  /** ms from the first request sent to the last stream ended. */
  wallMs: number;
  /** CPU time this (the client) process used meanwhile, ms. */
  clientCpuMs: number;
  samples: RequestSample[];
}

export interface LoadSummary {
  concurrency: number;
  requests: number;
  errors: number;
  /** The first error message, to tell what went wrong. */
  firstError: string | null;
  wallMs: number;
  /** CPU time of the load generator (this process), ms. */
  clientCpuMs: number;
  /** Completion tokens (from usage) of the successful requests. */
  completionTokens: number;
  /** Completion tokens (from usage) of the successful requests / wall time, tokens per second. */
  outputTokensPerSecond: number;
  /** Successful requests / wall time, per second. */
  requestsPerSecond: number;
  /** Time to first token, ms. */
  ttftMs: Summary;
  /** Inter-token latency: gaps between content chunks over all requests, ms. */
  interTokenMs: Summary;
  /** Mean prompt tokens per request (from usage). */
  promptTokensMean: number;
}

/** Runs the load and returns every request's sample; it never throws for a failed request (the sample says why). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.path, options.baseUrl);
  const agent = new http.Agent({ keepAlive: options.keepAlive ?? true, maxSockets: options.concurrency });
  const samples: RequestSample[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < options.requests) {
      const index = next++;
      const body = JSON.stringify(options.body(index));
      samples.push(await streamRequest({ url, body, agent, keepAlive: options.keepAlive ?? true, timeoutMs: options.timeoutMs, index }));
    }
  };
  const started = performance.now();
  const cpuBefore = ownCpuMs();
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.requests) }, client));
  } finally {
    agent.destroy();
  }
  samples.sort((a, b) => a.index - b.index);
  const wallMs = performance.now() - started;
  return { concurrency: options.concurrency, wallMs, clientCpuMs: ownCpuMs() - cpuBefore, samples };
}

export function summarizeLoad(result: LoadResult): LoadSummary {
  const ok = result.samples.filter((sample) => sample.error === null);
  const failed = result.samples.filter((sample) => sample.error !== null);
  const seconds = result.wallMs / 1000;
  const completionTokens = ok.reduce((sum, sample) => sum + (sample.completionTokens ?? 0), 0);
  const promptTokens = ok.flatMap((sample) => (sample.promptTokens === null ? [] : [sample.promptTokens]));
  return {
    concurrency: result.concurrency,
    requests: result.samples.length,
    errors: failed.length,
    firstError: failed[0]?.error ?? null,
    wallMs: result.wallMs,
    clientCpuMs: result.clientCpuMs,
    completionTokens,
    outputTokensPerSecond: completionTokens / seconds,
    requestsPerSecond: ok.length / seconds,
    ttftMs: summarize(ok.flatMap((sample) => (sample.ttftMs === null ? [] : [sample.ttftMs]))),
    interTokenMs: summarize(ok.flatMap((sample) => sample.interTokenMs)),
    promptTokensMean: promptTokens.length === 0 ? Number.NaN : promptTokens.reduce((a, b) => a + b, 0) / promptTokens.length,
  };
}

interface StreamRequestOptions {
  url: URL;
  body: string;
  agent: http.Agent;
  keepAlive: boolean;
  timeoutMs: number;
  index: number;
}

/** Sends one POST and reads its SSE stream as it arrives. Resolves (never rejects) once the exchange is over. */
function streamRequest(options: StreamRequestOptions): Promise<RequestSample> {
  return new Promise((resolve) => {
    const sample: RequestSample = {
      index: options.index,
      status: 0,
      error: null,
      ttftMs: null,
      interTokenMs: [],
      completionTokens: null,
      promptTokens: null,
      durationMs: 0,
    };
    const sentAt = performance.now();
    let lastContentAt = 0;
    let settled = false;
    const settle = (error: string | null): void => {
      if (settled) return;
      settled = true;
      sample.durationMs = performance.now() - sentAt;
      sample.error = error;
      resolve(sample);
    };

    const request = http.request(options.url, {
      method: 'POST',
      agent: options.agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(options.body),
        ...(options.keepAlive ? {} : { connection: 'close' }),
      },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    // AbortSignal.timeout is the only signal here: an abort means the deadline passed.
    const failure = (what: string, error: Error): string =>
      error.name === 'AbortError' ? `timed out after ${options.timeoutMs} ms` : `${what}: ${error.message}`;
    request.on('error', (error) => settle(failure('request failed', error)));
    request.on('response', (response) => {
      sample.status = response.statusCode ?? 0;
      response.setEncoding('utf8');
      if (sample.status !== 200) {
        let text = '';
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => settle(`HTTP ${sample.status}: ${text.slice(0, 300)}`));
        response.on('error', (error) => settle(`HTTP ${sample.status}: ${error.message}`));
        return;
      }
      const parser = new SseParser();
      let done = false;
      let streamError: string | null = null;
      response.on('data', (chunk: string) => {
        const now = performance.now();
        for (const payload of parser.push(chunk)) {
          if (payload === '[DONE]') {
            done = true;
            continue;
          }
          const event = readChunk(payload);
          if (event.error !== null) streamError ??= event.error;
          if (event.content.length > 0) {
            if (sample.ttftMs === null) sample.ttftMs = now - sentAt;
            else sample.interTokenMs.push(now - lastContentAt);
            lastContentAt = now;
          }
          if (event.completionTokens !== null) sample.completionTokens = event.completionTokens;
          if (event.promptTokens !== null) sample.promptTokens = event.promptTokens;
        }
      });
      response.on('end', () => {
        if (streamError !== null) settle(`error in stream: ${streamError}`);
        else if (!done) settle('the stream ended without [DONE]');
        else if (sample.completionTokens === null) settle('the stream carried no usage chunk');
        else settle(null);
      });
      response.on('error', (error) => settle(failure('stream failed', error)));
      response.on('close', () => settle('the connection closed mid-stream'));
    });
    request.end(options.body);
  });
}

interface ChunkReading {
  /** Generated text in this chunk (chat `delta.content` or completion `text`); '' when none. */
  content: string;
  completionTokens: number | null;
  promptTokens: number | null;
  /** The message of an in-stream error payload. */
  error: string | null;
}

/** Reads an OpenAI chat or completion stream chunk. */
export function readChunk(payload: string): ChunkReading {
  const reading: ChunkReading = { content: '', completionTokens: null, promptTokens: null, error: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    reading.error = `not JSON: ${payload.slice(0, 100)}`;
    return reading;
  }
  if (!isRecord(parsed)) return reading;
  if (isRecord(parsed.error)) reading.error = String(parsed.error.message ?? 'unknown error');
  const choice = Array.isArray(parsed.choices) ? (parsed.choices[0] as unknown) : undefined;
  if (isRecord(choice)) {
    if (typeof choice.text === 'string') reading.content = choice.text;
    else if (isRecord(choice.delta) && typeof choice.delta.content === 'string') reading.content = choice.delta.content;
  }
  if (isRecord(parsed.usage)) {
    if (typeof parsed.usage.completion_tokens === 'number') reading.completionTokens = parsed.usage.completion_tokens;
    if (typeof parsed.usage.prompt_tokens === 'number') reading.promptTokens = parsed.usage.prompt_tokens;
  }
  return reading;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

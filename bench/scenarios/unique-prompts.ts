/**
 * The "unique" scenario: every request has a prompt of about `promptTokens` tokens that starts with a random id (so no
 * prompt cache can help), streams `maxTokens` tokens with `ignore_eos`, and reports usage in its last chunk.
 */
import { runLoad, summarizeLoad, type LoadSummary } from '../load-generator.js';
import type { Endpoint } from '../options.js';
import { machineBusyMs } from '../process-cpu.js';
import { uniquePromptText } from '../prompts.js';

export interface UniquePromptsOptions {
  /** Server origin, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  modelId: string;
  endpoint: Endpoint;
  concurrency: number[];
  /** Requests of the level with `concurrency` clients. */
  requestsForLevel: (concurrency: number) => number;
  /** Output tokens per request. */
  maxTokens: number;
  /** Prompt tokens per request, about. */
  promptTokens: number;
  temperature: number;
  /** Deadline of each request, ms. */
  timeoutMs: number;
  /** CPU time the server has used so far, ms (TokenmillServer.cpuMs); null when unknown. */
  serverCpuMs: () => number | null;
  log: (line: string) => void;
  /** Connection reuse of the clients (LoadOptions.keepAlive; default true). */
  keepAlive?: boolean;
}

/** A level as the clients saw it, plus the server's CPU time meanwhile. */
export interface ServerLevel extends LoadSummary {
  /** CPU time of the server process (all threads) during the level, ms; null when unknown. */
  serverCpuMs: number | null;
  /** CPU time of everything else on the machine during the level, ms (should be near 0); null when unknown. */
  otherCpuMs: number | null;
}

export interface UniquePromptsResult {
  /** Words after the id, chosen so that prompts have about `promptTokens` tokens. */
  promptWords: number;
  levels: ServerLevel[];
}

export async function runUniquePrompts(options: UniquePromptsOptions): Promise<UniquePromptsResult> {
  const promptWords = await calibratePromptWords(options);
  const levels: ServerLevel[] = [];
  for (const concurrency of options.concurrency) {
    const cpuBefore = options.serverCpuMs();
    const busyBefore = machineBusyMs();
    const summary = summarizeLoad(
      await runLoad({
        baseUrl: options.baseUrl,
        path: endpointPath(options.endpoint),
        concurrency,
        requests: options.requestsForLevel(concurrency),
        body: () => requestBody(options, uniquePromptText(promptWords), options.maxTokens),
        timeoutMs: options.timeoutMs,
        keepAlive: options.keepAlive,
      }),
    );
    options.log(
      `server C=${concurrency}: ${summary.outputTokensPerSecond.toFixed(0)} tok/s` +
        (summary.errors > 0 ? `, ${summary.errors} errors (${summary.firstError})` : ''),
    );
    const cpuAfter = options.serverCpuMs();
    const busyAfter = machineBusyMs();
    const serverCpuMs = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
    const otherCpuMs =
      serverCpuMs === null || busyBefore === null || busyAfter === null
        ? null
        : Math.max(0, busyAfter - busyBefore - serverCpuMs - summary.clientCpuMs);
    levels.push({ ...summary, serverCpuMs, otherCpuMs });
  }
  return { promptWords, levels };
}

export function endpointPath(endpoint: Endpoint): string {
  return endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
}

/** A streaming request with usage in the last chunk and `ignore_eos`, so that every request yields `maxTokens`. */
export function requestBody(options: Pick<UniquePromptsOptions, 'modelId' | 'endpoint' | 'temperature'>, text: string, maxTokens: number): Record<string, unknown> {
  const common = {
    model: options.modelId,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: maxTokens,
    ignore_eos: true,
    temperature: options.temperature,
  };
  return options.endpoint === 'chat' ? { ...common, messages: [{ role: 'user', content: text }] } : { ...common, prompt: text };
}

/**
 * How many words make a prompt of about `promptTokens` tokens, chat template included: a first guess from /tokenize,
 * corrected by the prompt_tokens of two warm-up requests (which also warm the server up; they are not measured).
 */
async function calibratePromptWords(options: UniquePromptsOptions): Promise<number> {
  const sampleWords = 100;
  const response = await fetch(`${options.baseUrl}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: options.modelId, content: uniquePromptText(sampleWords) }),
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  if (response.status !== 200) throw new Error(`POST /tokenize answered ${response.status}: ${await response.text()}`);
  const tokenized: unknown = await response.json();
  const tokens = typeof tokenized === 'object' && tokenized !== null && 'tokens' in tokenized && Array.isArray(tokenized.tokens)
    ? tokenized.tokens.length
    : sampleWords;
  const tokensPerWord = tokens / sampleWords;
  const guess = Math.max(1, Math.round(options.promptTokens / tokensPerWord));

  const warmUp = summarizeLoad(
    await runLoad({
      baseUrl: options.baseUrl,
      path: endpointPath(options.endpoint),
      concurrency: 2,
      requests: 2,
      body: () => requestBody(options, uniquePromptText(guess), 16),
      timeoutMs: options.timeoutMs,
      keepAlive: options.keepAlive,
    }),
  );
  if (warmUp.errors > 0) throw new Error(`warm-up request failed: ${warmUp.firstError}`);
  // The chat template and the id add a constant number of tokens: correct the guess by the difference.
  return Math.max(1, guess + Math.round((options.promptTokens - warmUp.promptTokensMean) / tokensPerWord));
}

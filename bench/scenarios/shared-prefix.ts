import { randomBytes } from 'node:crypto';
import { runLoad, summarizeLoad } from '../load-generator.js';
import { uniquePromptText } from '../prompts.js';
import type { Summary } from '../stats.js';

/**
 * The shared-prefix scenario (prompt caching): every request is a long system prompt shared by all, plus a short
 * unique question. "cache off" gives every request its own `cache_salt`, so no prefix is ever reused; "cache on" sends
 * none. The hit rate is read from the server's own counters (GET /metrics: prefix-cache hits / queries).
 */
export interface SharedPrefixOptions {
  baseUrl: string;
  modelId: string;
  /** Tokens of the shared system prompt, about. */
  prefixTokens: number;
  concurrency: number[];
  requestsForLevel: (concurrency: number) => number;
  maxTokens: number;
  timeoutMs: number;
}

export interface SharedPrefixLevel {
  cache: 'off' | 'on';
  concurrency: number;
  ttftMs: Summary;
  /** Prompt tokens of all requests / wall time, tokens per second. */
  promptTokensPerSecond: number;
  /** Prompt tokens reused / prompt tokens looked up, over the level. */
  hitRate: number;
  promptTokensMean: number;
  errors: number;
}

export async function runSharedPrefix(options: SharedPrefixOptions): Promise<SharedPrefixLevel[]> {
  const prefix = await calibratedPrefix(options.baseUrl, options.modelId, options.prefixTokens);
  const body = (salt: string | null) => ({
    model: options.modelId,
    messages: [
      { role: 'system', content: prefix },
      { role: 'user', content: `Question ${randomBytes(4).toString('hex')}: what happened next?` },
    ],
    max_tokens: options.maxTokens,
    temperature: 0.7,
    stream: true,
    stream_options: { include_usage: true },
    ...(salt === null ? {} : { cache_salt: salt }),
  });
  const levels: SharedPrefixLevel[] = [];
  for (const cache of ['off', 'on'] as const) {
    for (const concurrency of options.concurrency) {
      const salt = () => (cache === 'off' ? randomBytes(8).toString('hex') : null);
      if (cache === 'on') {
        // One request computes the prefix, as the first customer of a deployment would.
        await runLoad({ baseUrl: options.baseUrl, path: '/v1/chat/completions', concurrency: 1, requests: 1, body: () => body(null), timeoutMs: options.timeoutMs });
      }
      const before = await cacheCounters(options.baseUrl, options.modelId);
      const result = await runLoad({
        baseUrl: options.baseUrl,
        path: '/v1/chat/completions',
        concurrency,
        requests: options.requestsForLevel(concurrency),
        body: () => body(salt()),
        timeoutMs: options.timeoutMs,
      });
      const after = await cacheCounters(options.baseUrl, options.modelId);
      const summary = summarizeLoad(result);
      const promptTokens = result.samples.reduce((sum, sample) => sum + (sample.promptTokens ?? 0), 0);
      levels.push({
        cache,
        concurrency,
        ttftMs: summary.ttftMs,
        promptTokensPerSecond: promptTokens / (result.wallMs / 1000),
        hitRate: (after.hits - before.hits) / Math.max(1, after.queries - before.queries),
        promptTokensMean: summary.promptTokensMean,
        errors: summary.errors,
      });
    }
  }
  return levels;
}

/** A system prompt of about `tokens` tokens of the model's tokenizer (sized with POST /tokenize). */
async function calibratedPrefix(baseUrl: string, model: string, tokens: number): Promise<string> {
  let words = Math.round(tokens / 2);
  let text = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    text = `You are a storyteller. ${uniquePromptText(words)}`;
    const response = await fetch(`${baseUrl}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, content: text }),
    });
    const count = ((await response.json()) as { tokens: number[] }).tokens.length;
    if (Math.abs(count - tokens) < tokens * 0.05) break;
    words = Math.max(1, Math.round((words * tokens) / count));
  }
  return text;
}

async function cacheCounters(baseUrl: string, model: string): Promise<{ hits: number; queries: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}\\{model="${model}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hits: read('tokenmill_prefix_cache_hits_total'), queries: read('tokenmill_prefix_cache_queries_total') };
}

export function formatSharedPrefix(levels: readonly SharedPrefixLevel[]): string {
  const lines = [
    '| cache | C | TTFT p50 ms | TTFT p99 ms | prompt tok/s | hit rate | prompt tokens | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const level of levels) {
    lines.push(
      `| ${level.cache} | ${level.concurrency} | ${level.ttftMs.p50.toFixed(1)} | ${level.ttftMs.p99.toFixed(1)} | ` +
        `${level.promptTokensPerSecond.toFixed(0)} | ${(level.hitRate * 100).toFixed(1)}% | ${level.promptTokensMean.toFixed(0)} | ${level.errors} |`,
    );
  }
  return lines.join('\n');
}

export interface NoSharedPrefixResult {
  /** Output tokens/s of unique prompts with the prompt cache in use (no salt), per round. */
  onTokensPerSecond: number[];
  /** The same with the cache defeated (a unique cache_salt per request), per round. */
  offTokensPerSecond: number[];
  /** Sum of on / sum of off: 1.0 = no loss. */
  ratio: number;
}

/**
 * "No throughput loss on workloads without shared prefixes": unique prompts (a random id first, so nothing but the
 * chat template's first tokens is shared) at concurrency `concurrency`, with the cache in use and defeated by a
 * unique `cache_salt`, alternated over `rounds` so that drift hits both alike.
 */
export async function runNoSharedPrefix(options: {
  baseUrl: string;
  modelId: string;
  concurrency: number;
  requests: number;
  rounds: number;
  promptWords: number;
  maxTokens: number;
  timeoutMs: number;
}): Promise<NoSharedPrefixResult> {
  const body = (salted: boolean) => ({
    model: options.modelId,
    messages: [{ role: 'user', content: `${randomBytes(6).toString('hex')} ${uniquePromptText(options.promptWords)}` }],
    max_tokens: options.maxTokens,
    ignore_eos: true,
    temperature: 0.7,
    stream: true,
    stream_options: { include_usage: true },
    ...(salted ? { cache_salt: randomBytes(8).toString('hex') } : {}),
  });
  const on: number[] = [];
  const off: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const salted of round % 2 === 0 ? [false, true] : [true, false]) {
      const result = await runLoad({
        baseUrl: options.baseUrl,
        path: '/v1/chat/completions',
        concurrency: options.concurrency,
        requests: options.requests,
        body: () => body(salted),
        timeoutMs: options.timeoutMs,
      });
      const summary = summarizeLoad(result);
      if (summary.errors > 0) throw new Error(`no-shared-prefix load failed: ${summary.firstError}`);
      (salted ? off : on).push(summary.outputTokensPerSecond);
    }
  }
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  return { onTokensPerSecond: on, offTokensPerSecond: off, ratio: sum(on) / sum(off) };
}

import { runLoad, summarizeLoad, type LoadSummary } from '../load-generator.js';
import { uniquePromptText } from '../prompts.js';

/**
 * The batch scenario: short chat requests, first as interactive streams at C = sequences (the peak interactive
 * throughput of this run), then as one batch of `batchLines` lines on the otherwise idle server (its throughput is
 * every line's completion tokens over the time from create to completed, as a client sees it), then a light
 * interactive load alone and again while a second batch runs, to see what the batch does to interactive TTFT.
 */
export interface BatchScenarioOptions {
  baseUrl: string;
  modelId: string;
  sequences: number;
  batchLines: number;
  maxTokens: number;
  promptWords: number;
  /** Clients of the light interactive load, and its requests. */
  lightConcurrency: number;
  lightRequests: number;
  timeoutMs: number;
}

export interface BatchScenarioResult {
  peak: LoadSummary;
  batch: { lines: number; completionTokens: number; wallMs: number; tokensPerSecond: number; failed: number };
  lightAlone: LoadSummary;
  lightWithBatch: LoadSummary;
  /** Lines the second batch had answered when the light load ended, of `batchLines`. */
  secondBatchAnswered: number;
}

export async function runBatchScenario(options: BatchScenarioOptions): Promise<BatchScenarioResult> {
  const body = (stream: boolean) => ({
    model: options.modelId,
    messages: [{ role: 'user', content: uniquePromptText(options.promptWords) }],
    max_tokens: options.maxTokens,
    ignore_eos: true,
    temperature: 0.7,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
  const load = (concurrency: number, requests: number) =>
    runLoad({ baseUrl: options.baseUrl, path: '/v1/chat/completions', concurrency, requests, body: () => body(true), timeoutMs: options.timeoutMs });

  await load(options.sequences, options.sequences); // warm-up
  const peak = summarizeLoad(await load(options.sequences, options.sequences * 8));

  const input = await upload(options.baseUrl, Array.from({ length: options.batchLines }, (_, index) => ({ custom_id: `line-${index}`, method: 'POST', url: '/v1/chat/completions', body: body(false) })));
  const started = performance.now();
  const first = await createBatch(options.baseUrl, input);
  const done = await waitUntil(options.baseUrl, first, (batch) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status), options.timeoutMs * 10);
  const wallMs = performance.now() - started;
  const completionTokens = await outputTokens(options.baseUrl, done.output_file_id);

  const lightAlone = summarizeLoad(await load(options.lightConcurrency, options.lightRequests));
  const second = await createBatch(options.baseUrl, input);
  await waitUntil(options.baseUrl, second, (batch) => batch.request_counts.completed > 0, options.timeoutMs);
  const lightWithBatch = summarizeLoad(await load(options.lightConcurrency, options.lightRequests));
  const during = await api(options.baseUrl, 'GET', `/v1/batches/${second}`);
  await api(options.baseUrl, 'POST', `/v1/batches/${second}/cancel`);
  await waitUntil(options.baseUrl, second, (batch) => batch.status === 'cancelled', options.timeoutMs);
  return {
    peak,
    batch: { lines: options.batchLines, completionTokens, wallMs, tokensPerSecond: completionTokens / (wallMs / 1000), failed: done.request_counts.failed },
    lightAlone,
    lightWithBatch,
    secondBatchAnswered: during.request_counts.completed + during.request_counts.failed,
  };
}

async function api(baseUrl: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function upload(baseUrl: string, lines: unknown[]): Promise<string> {
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', new Blob([lines.map((line) => JSON.stringify(line)).join('\n')]), 'bench.jsonl');
  const response = await fetch(`${baseUrl}/v1/files`, { method: 'POST', body: form });
  if (!response.ok) throw new Error(`upload: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

async function createBatch(baseUrl: string, inputFileId: string): Promise<string> {
  return (await api(baseUrl, 'POST', '/v1/batches', { input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' })).id;
}

async function waitUntil(baseUrl: string, id: string, done: (batch: any) => boolean, timeoutMs: number): Promise<any> {
  const until = Date.now() + timeoutMs;
  while (true) {
    const batch = await api(baseUrl, 'GET', `/v1/batches/${id}`);
    if (done(batch)) return batch;
    if (Date.now() > until) throw new Error(`batch ${id} is still ${batch.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function outputTokens(baseUrl: string, fileId: string | null): Promise<number> {
  if (!fileId) return 0;
  const text = await (await fetch(`${baseUrl}/v1/files/${fileId}/content`)).text();
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .reduce((sum, line) => sum + ((JSON.parse(line) as { response: { body: { usage: { completion_tokens: number } } } }).response.body.usage.completion_tokens ?? 0), 0);
}

export function formatBatchScenario(result: BatchScenarioResult, options: BatchScenarioOptions): string {
  const ratio = result.batch.tokensPerSecond / result.peak.outputTokensPerSecond;
  const rise = result.lightWithBatch.ttftMs.p99 / result.lightAlone.ttftMs.p99 - 1;
  return [
    '| measurement | value |',
    '| --- | ---: |',
    `| peak interactive tok/s (C=${options.sequences}, ${result.peak.requests} streams) | ${result.peak.outputTokensPerSecond.toFixed(0)} |`,
    `| batch of ${result.batch.lines} lines: tok/s (create -> completed) | ${result.batch.tokensPerSecond.toFixed(0)} (${(result.batch.wallMs / 1000).toFixed(1)} s, ${result.batch.failed} failed) |`,
    `| batch / peak | ${(ratio * 100).toFixed(0)}% (goal >= 90%) |`,
    `| interactive TTFT p50 / p99 ms, C=${options.lightConcurrency}, alone | ${result.lightAlone.ttftMs.p50.toFixed(1)} / ${result.lightAlone.ttftMs.p99.toFixed(1)} |`,
    `| the same beside a running batch | ${result.lightWithBatch.ttftMs.p50.toFixed(1)} / ${result.lightWithBatch.ttftMs.p99.toFixed(1)} (batch answered ${result.secondBatchAnswered} lines meanwhile) |`,
    `| TTFT p99 rise | ${(rise * 100).toFixed(0)}% (goal <= 20%) |`,
  ].join('\n');
}

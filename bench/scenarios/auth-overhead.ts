import http from 'node:http';
import { BENCH_MODELS } from '../bench-models.js';
import { installChildCleanup } from '../child-processes.js';
import { startTokenmill, type TokenmillServer } from '../server-process.js';
import { summarize, type Summary } from '../stats.js';
import { postJson } from '../post-json.js';

/**
 * What the accounts path (key lookup, rate limits, fund reservation, usage record and settlement) adds to a request:
 * the same tiny request (a 1-token completion on stories-260k) sent back to back to two servers that differ only in
 * `TOKENMILL_AUTH`, interleaved in rounds so that drift hits both alike.
 */
export interface AuthOverheadResult {
  backend: string;
  off: Summary;
  on: Summary;
  /** on - off, ms. */
  addedP50: number;
  addedP99: number;
}

const ADMIN_KEY = 'tm-bench-admin-key-0123456789abcdef';
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

async function startServer(auth: boolean, env: Record<string, string>): Promise<TokenmillServer> {
  const model = BENCH_MODELS.stories;
  return startTokenmill({
    modelId: model.id,
    modelPath: model.path,
    sequences: 4,
    threads: 1,
    contextSize: 2048,
    readyTimeoutMs: 60_000,
    env: { TOKENMILL_AUTH: auth ? 'on' : 'off', TOKENMILL_ADMIN_KEY: ADMIN_KEY, ...env },
  });
}

function post(url: string, path: string, body: unknown, key: string | null): Promise<{ status: number; body: string }> {
  return postJson(agent, `${url}${path}`, JSON.stringify(body), key);
}

async function timed(url: string, key: string | null): Promise<number> {
  const started = performance.now();
  const response = await post(url, '/v1/completions', { model: 'stories-260k', prompt: 'Once upon a time', max_tokens: 1, temperature: 0 }, key);
  if (response.status !== 200) throw new Error(`request failed: ${response.status} ${response.body}`);
  return performance.now() - started;
}

/** Runs the comparison on one storage backend (`env` adds e.g. DATABASE_URL and REDIS_URL). */
export async function runAuthOverhead(options: { backend: string; env?: Record<string, string>; rounds?: number; perRound?: number }): Promise<AuthOverheadResult> {
  installChildCleanup();
  const off = await startServer(false, options.env ?? {});
  const on = await startServer(true, options.env ?? {});
  try {
    const account = await post(on.baseUrl, '/v1/admin/accounts', { name: 'bench', credits_usd: 1000 }, ADMIN_KEY);
    const accountId = JSON.parse(account.body).id as string;
    const created = await post(on.baseUrl, `/v1/admin/accounts/${accountId}/keys`, { name: 'bench', rpm: 1_000_000, tpm: 1_000_000_000, max_concurrency: 100 }, ADMIN_KEY);
    const key = JSON.parse(created.body).key as string;
    const samplesOff: number[] = [];
    const samplesOn: number[] = [];
    for (let warm = 0; warm < 30; warm++) {
      await timed(off.baseUrl, null);
      await timed(on.baseUrl, key);
    }
    for (let round = 0; round < (options.rounds ?? 10); round++) {
      for (let index = 0; index < (options.perRound ?? 40); index++) samplesOff.push(await timed(off.baseUrl, null));
      for (let index = 0; index < (options.perRound ?? 40); index++) samplesOn.push(await timed(on.baseUrl, key));
    }
    const offSummary = summarize(samplesOff);
    const onSummary = summarize(samplesOn);
    return { backend: options.backend, off: offSummary, on: onSummary, addedP50: onSummary.p50 - offSummary.p50, addedP99: onSummary.p99 - offSummary.p99 };
  } finally {
    await off.stop();
    await on.stop();
  }
}

export function formatAuthOverhead(results: readonly AuthOverheadResult[]): string {
  const lines = [
    '| backend | auth off p50 ms | auth on p50 ms | added p50 ms | auth off p99 ms | auth on p99 ms | added p99 ms | requests each |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const result of results) {
    lines.push(
      `| ${result.backend} | ${result.off.p50.toFixed(2)} | ${result.on.p50.toFixed(2)} | ${result.addedP50.toFixed(2)} | ` +
        `${result.off.p99.toFixed(2)} | ${result.on.p99.toFixed(2)} | ${result.addedP99.toFixed(2)} | ${result.off.count} |`,
    );
  }
  return lines.join('\n');
}

import http from 'node:http';
import { installChildCleanup } from './child-processes.js';
import { spawnInstantUpstream, startInstantUpstream } from './instant-upstream.js';
import { spawnMinimalProxy } from './minimal-proxy.js';
import { startTokenmill } from './server-process.js';
import { summarize, type Summary } from './stats.js';
import { postJson } from './post-json.js';

/**
 * `node dist/bench/gateway.js [--rounds N] [--seconds S] [--warmup-seconds W]`: what Tokenmill adds in front of an
 * upstream. An upstream that answers at once (bench/instant-upstream.ts, in a process of its own as real upstreams
 * are; in this process with `--upstream-in-process`) is called directly and through a gateway Tokenmill (a child
 * process, accounts, limits and the SQLite ledger on), and through the floor (bench/minimal-proxy.ts: the least any
 * Node.js process in the middle adds on this machine), one request at a time, interleaved in rounds so that drift
 * hits all alike, after W seconds (15) of warm-up traffic through the gateway and W/3 through the others; then
 * requests/s through the gateway with several clients at once.
 * `--auth-off` runs the gateway without accounts (to separate the store's share); `--profile DIR` writes the
 * gateway's V8 CPU profile there (sampled every 50 us); `--node-flags "..."` starts the gateway's node with those flags.
 */
const ADMIN_KEY = 'tm-bench-admin-key-0123456789abcdef';
/** Issue 7's goals for what the gateway adds (accounts, limits and the ledger on), ms. */
const GOAL_P50_MS = 1;
const GOAL_P99_MS = 5;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

function post(url: string, body: string, key: string | null): Promise<{ status: number; body: string }> {
  return postJson(agent, url, body, key);
}

async function timed(url: string, body: string, key: string | null): Promise<number> {
  const started = performance.now();
  const response = await post(url, body, key);
  if (response.status !== 200) throw new Error(`request failed: ${response.status} ${response.body}`);
  return performance.now() - started;
}

const plain = JSON.stringify({ model: 'instant', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 });
const streamed = JSON.stringify({ model: 'instant', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, stream: true, stream_options: { include_usage: true } });

installChildCleanup();
const upstreamInProcess = process.argv.includes('--upstream-in-process');
const upstream = upstreamInProcess ? await startInstantUpstream() : await spawnInstantUpstream();
const floor = await spawnMinimalProxy(upstream.url);
const gateway = await startTokenmill({
  modelId: 'instant',
  modelPath: 'unused',
  sequences: 1,
  threads: 1,
  contextSize: 2048,
  readyTimeoutMs: 60_000,
  env: {
    TOKENMILL_AUTH: process.argv.includes('--auth-off') ? 'off' : 'on',
    TOKENMILL_ADMIN_KEY: ADMIN_KEY,
  },
  nodeFlags: [
    ...(process.argv.includes('--profile') ? ['--cpu-prof', '--cpu-prof-interval=50', `--cpu-prof-dir=${process.argv[process.argv.indexOf('--profile') + 1]}`] : []),
    ...(process.argv.includes('--node-flags') ? process.argv[process.argv.indexOf('--node-flags') + 1].split(' ').filter(Boolean) : []),
  ],
  catalogModels: [
    {
      id: 'instant',
      context_size: 4096,
      prices: { input: 0.2, cached_input: 0.05, output: 0.8 },
      deployments: [{ kind: 'openai', base_url: `${upstream.url}/v1`, model: 'instant', timeout_ms: 10_000 }],
    },
  ],
});
try {
  const authOn = !process.argv.includes('--auth-off');
  const account = !authOn ? { id: null } : JSON.parse((await post(`${gateway.baseUrl}/v1/admin/accounts`, JSON.stringify({ name: 'bench', credits_usd: 1000 }), ADMIN_KEY)).body);
  const created = !authOn ? { body: '{"key":null}' } : await post(
    `${gateway.baseUrl}/v1/admin/accounts/${account.id}/keys`,
    JSON.stringify({ name: 'bench', rpm: 10_000_000, tpm: 1_000_000_000, max_concurrency: 1000 }),
    ADMIN_KEY,
  );
  const key = JSON.parse(created.body).key as string | null;
  const direct = `${upstream.url}/v1/chat/completions`;
  const through = `${gateway.baseUrl}/v1/chat/completions`;
  const viaFloor = `${floor.url}/v1/chat/completions`;
  const cases = [
    { name: 'non-streamed', body: plain },
    { name: 'streamed', body: streamed },
  ];
  const samples = new Map<string, number[]>();
  const push = (name: string, value: number) => samples.set(name, [...(samples.get(name) ?? []), value]);
  // Steady state, not warm-up: on the 2-vCPU VM V8 goes on optimizing the gateway's code for ~10-15 s of sequential
  // traffic (~15,000 requests; TurboFan on background threads that take one of the two cores from the client and the
  // upstream meanwhile), and the floor's for a few seconds (docs/decisions/0022).
  const warmupSeconds = option('--warmup-seconds', 15);
  const warmUntil = (seconds: number) => performance.now() + seconds * 1000;
  const gatewayWarm = warmUntil(warmupSeconds);
  while (performance.now() < gatewayWarm) for (const { body } of cases) await timed(through, body, key);
  const othersWarm = warmUntil(warmupSeconds / 3);
  while (performance.now() < othersWarm) {
    for (const { body } of cases) {
      await timed(direct, body, null);
      await timed(viaFloor, body, null);
    }
  }
  const rounds = option('--rounds', 10);
  const cpuBefore = gateway.cpuMs();
  const mainBefore = gateway.mainThreadCpuMs();
  for (let round = 0; round < rounds; round++) {
    for (const { name, body } of cases) {
      for (let index = 0; index < 50; index++) push(`${name} direct`, await timed(direct, body, null));
      for (let index = 0; index < 50; index++) push(`${name} gateway`, await timed(through, body, key));
      for (let index = 0; index < 50; index++) push(`${name} floor`, await timed(viaFloor, body, null));
    }
  }
  const cpuAfter = gateway.cpuMs();
  const mainAfter = gateway.mainThreadCpuMs();
  const lines = [
    '| request | direct p50 ms | gateway p50 ms | added p50 ms | floor added p50 ms | direct p99 ms | gateway p99 ms | added p99 ms | floor added p99 ms | requests each |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const verdicts: string[] = [];
  for (const { name } of cases) {
    const direct: Summary = summarize(samples.get(`${name} direct`)!);
    const gatewayed: Summary = summarize(samples.get(`${name} gateway`)!);
    const floored: Summary = summarize(samples.get(`${name} floor`)!);
    const addedP50 = gatewayed.p50 - direct.p50;
    const addedP99 = gatewayed.p99 - direct.p99;
    verdicts.push(
      `${name}: added p50 ${addedP50.toFixed(2)} ms ${addedP50 < GOAL_P50_MS ? 'PASS' : 'FAIL'} (goal < ${GOAL_P50_MS}), ` +
        `added p99 ${addedP99.toFixed(2)} ms ${addedP99 < GOAL_P99_MS ? 'PASS' : 'FAIL'} (goal < ${GOAL_P99_MS}); ` +
        `above the floor: ${(gatewayed.p50 - floored.p50).toFixed(2)} ms at p50`,
    );
    lines.push(
      `| ${name} | ${direct.p50.toFixed(3)} | ${gatewayed.p50.toFixed(3)} | ${(gatewayed.p50 - direct.p50).toFixed(3)} | ` +
        `${(floored.p50 - direct.p50).toFixed(3)} | ${direct.p99.toFixed(3)} | ${gatewayed.p99.toFixed(3)} | ` +
        `${(gatewayed.p99 - direct.p99).toFixed(3)} | ${(floored.p99 - direct.p99).toFixed(3)} | ${direct.count} |`,
    );
  }
  lines.push(
    '',
    'floor: a minimal Node.js proxy (bench/minimal-proxy.ts: parse, forward over node:http, answer) in the same run;',
    "what the gateway adds above it is Tokenmill's own cost.",
    ...verdicts,
  );
  console.log(lines.join('\n'));
  if (cpuBefore !== null && cpuAfter !== null && mainBefore !== null && mainAfter !== null) {
    // CPU time rather than latency: it moves far less with what else runs on the machine. The main thread's is what
    // requests wait for; the other threads (GC, SQLite's checkpoints and settlements) run beside it.
    const gatewayRequests = rounds * cases.length * 50;
    const perRequest = (ms: number) => (ms / gatewayRequests).toFixed(3);
    console.log(
      `gateway CPU per sequential request: ${perRequest(mainAfter - mainBefore)} ms on its main thread, ` +
        `${perRequest(cpuAfter - cpuBefore)} ms in all threads (${gatewayRequests} requests)`,
    );
  }

  const seconds = option('--seconds', 5);
  const concurrency = option('--concurrency', 16);
  const throughput = async (url: string, key: string | null): Promise<number> => {
    let done = 0;
    const until = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await timed(url, plain, key);
          done++;
        }
      }),
    );
    return done / ((performance.now() - started) / 1000);
  };
  const gatewayRate = await throughput(through, key);
  const directRate = await throughput(direct, null);
  console.log(
    `\nthroughput, ${concurrency} clients for ${seconds} s, non-streamed: gateway ${gatewayRate.toFixed(0)} requests/s ` +
      `(direct to the upstream: ${directRate.toFixed(0)} requests/s; the upstream ${upstreamInProcess ? 'and the clients share this process' : 'runs in a process of its own'})`,
  );
  const cpu = gateway.cpuMs();
  if (cpu !== null) console.log(`gateway process CPU time over the whole run: ${(cpu / 1000).toFixed(1)} s`);
} finally {
  await gateway.stop();
  await floor.close();
  await upstream.close();
}
process.exit(0);

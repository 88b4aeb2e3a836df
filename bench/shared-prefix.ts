/**
 * `node dist/bench/shared-prefix.js [--model stories|bench58m]`: the prompt-cache scenario (scenarios/shared-prefix.ts):
 * a system prompt of about 1,500 tokens shared by every request plus a short unique question, at concurrency 1 and 8,
 * with the cache off (a unique cache_salt per request) and on, in one run. Prints TTFT, prompt tokens/s and hit rate.
 */
import { BENCH_MODELS, ensureBench58m, servedModel } from './bench-models.js';
import { installChildCleanup } from './child-processes.js';
import { describeMachine, formatMachine } from './machine.js';
import type { ModelName } from './options.js';
import { formatSharedPrefix, runNoSharedPrefix, runSharedPrefix } from './scenarios/shared-prefix.js';
import { startTokenmill } from './server-process.js';

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

async function main(): Promise<void> {
  installChildCleanup();
  const index = process.argv.indexOf('--model');
  const modelName = (index >= 0 ? process.argv[index + 1] : 'stories') as ModelName;
  const model = BENCH_MODELS[modelName];
  if (!model) throw new Error(`unknown model '${modelName}'; use stories or bench58m`);
  if (modelName === 'bench58m') await ensureBench58m(log);
  log(formatMachine(describeMachine()));
  const server = await startTokenmill({ ...servedModel(model), sequences: 8, threads: 1, contextSize: 2048, readyTimeoutMs: 120_000 });
  try {
    const levels = await runSharedPrefix({
      baseUrl: server.baseUrl,
      modelId: model.id,
      prefixTokens: 1500,
      concurrency: [1, 8],
      requestsForLevel: (concurrency) => (concurrency === 1 ? 10 : 24),
      maxTokens: 16,
      timeoutMs: 300_000,
    });
    console.log(`\n### shared prefix (${model.name}, 8 sequences, 16 output tokens)\n`);
    console.log(formatSharedPrefix(levels));
    for (const concurrency of [1, 8]) {
      const off = levels.find((level) => level.cache === 'off' && level.concurrency === concurrency)!;
      const on = levels.find((level) => level.cache === 'on' && level.concurrency === concurrency)!;
      console.log(`C=${concurrency}: TTFT p50 cold/hit = ${(off.ttftMs.p50 / on.ttftMs.p50).toFixed(1)}x (goal >= 5x); hit rate ${(on.hitRate * 100).toFixed(1)}% (goal >= 90% at C=8)`);
    }
    const unshared = await runNoSharedPrefix({
      baseUrl: server.baseUrl,
      modelId: model.id,
      concurrency: 8,
      requests: 24,
      rounds: 4,
      promptWords: 60,
      maxTokens: 64,
      timeoutMs: 300_000,
    });
    const format = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ');
    console.log(
      `no shared prefix (unique prompts, C=8, 4 alternated rounds): output tok/s cache in use ${format(unshared.onTokensPerSecond)}; ` +
        `cache defeated by cache_salt ${format(unshared.offTokensPerSecond)}; ratio ${unshared.ratio.toFixed(3)} (goal: no loss, ~1.0)`,
    );
  } finally {
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

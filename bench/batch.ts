/**
 * `node dist/bench/batch.js [--model stories|bench58m] [--lines N]`: the batch scenario (scenarios/batch-throughput.ts):
 * a batch of short chat requests against the peak interactive throughput of the same run, and interactive TTFT with
 * and without a batch running.
 */
import { BENCH_MODELS, ensureBench58m, servedModel } from './bench-models.js';
import { installChildCleanup } from './child-processes.js';
import { describeMachine, formatMachine } from './machine.js';
import type { ModelName } from './options.js';
import { formatBatchScenario, runBatchScenario } from './scenarios/batch-throughput.js';
import { startTokenmill } from './server-process.js';

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

async function main(): Promise<void> {
  installChildCleanup();
  const modelName = (argument('--model') ?? 'stories') as ModelName;
  const model = BENCH_MODELS[modelName];
  if (!model) throw new Error(`unknown model '${modelName}'; use stories or bench58m`);
  if (modelName === 'bench58m') await ensureBench58m(log);
  log(formatMachine(describeMachine()));
  const sequences = 8;
  const server = await startTokenmill({
    ...servedModel(model),
    sequences,
    threads: 1,
    contextSize: 2048,
    readyTimeoutMs: 120_000,
    env: { TOKENMILL_BATCH_POLL_INTERVAL_MS: '100' },
  });
  const options = {
    baseUrl: server.baseUrl,
    modelId: model.id,
    sequences,
    batchLines: Number(argument('--lines') ?? 500),
    maxTokens: 32,
    promptWords: 20,
    lightConcurrency: 2,
    lightRequests: 100,
    timeoutMs: 120_000,
  };
  try {
    const result = await runBatchScenario(options);
    console.log(`\n### batch (${model.name}, ${sequences} sequences, ${options.maxTokens} output tokens per request)\n`);
    console.log(formatBatchScenario(result, options));
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

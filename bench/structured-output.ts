/**
 * `node dist/bench/structured-output.js [--model stories|bench58m] [--sequences 8]`: starts Tokenmill with one model
 * and prints the structured-output table (scenarios/structured-output.ts): tokens/s of unconstrained streams alone,
 * beside plain load, and beside constrained (json_schema) load. About a minute per model on two cores.
 */
import { BENCH_MODELS, ensureBench58m, servedModel } from './bench-models.js';
import { installChildCleanup } from './child-processes.js';
import { describeMachine, formatMachine } from './machine.js';
import type { ModelName } from './options.js';
import { runStructuredOutputScenario, type StructuredOutputResult } from './scenarios/structured-output.js';
import { startTokenmill } from './server-process.js';

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] !== undefined ? process.argv[index + 1] : fallback;
}

function formatTable(result: StructuredOutputResult): string {
  const lines = [
    '| phase | unconstrained tok/s (all streams) | per stream | inter-token p50 ms | p90 ms | background tok/s |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const phase of result.phases) {
    const foreground = phase.foreground;
    const perStream = foreground.outputTokensPerSecond / Math.min(foreground.concurrency, foreground.requests);
    lines.push(
      `| ${phase.name} | ${foreground.outputTokensPerSecond.toFixed(0)} | ${perStream.toFixed(1)} | ` +
        `${foreground.interTokenMs.p50.toFixed(2)} | ${foreground.interTokenMs.p90.toFixed(2)} | ` +
        `${phase.background ? phase.background.outputTokensPerSecond.toFixed(0) : '-'} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  installChildCleanup();
  const modelName = option('model', 'stories') as ModelName;
  const model = BENCH_MODELS[modelName];
  if (!model) throw new Error(`unknown model '${modelName}'; use stories or bench58m`);
  if (modelName === 'bench58m') await ensureBench58m(log);
  const sequences = Number(option('sequences', '8'));
  log(formatMachine(describeMachine()));
  const server = await startTokenmill({
    ...servedModel(model),
    sequences,
    threads: 1,
    contextSize: 2048,
    readyTimeoutMs: 120_000,
  });
  try {
    const foreground = Math.max(1, Math.floor(sequences / 2));
    // bench58m is about 7 times slower per token: shorter requests keep the run near a minute.
    const maxTokens = modelName === 'stories' ? 256 : 96;
    const result = await runStructuredOutputScenario({
      baseUrl: server.baseUrl,
      modelId: model.id,
      foreground,
      requests: foreground * (modelName === 'stories' ? 3 : 2),
      rounds: 4,
      background: sequences - foreground,
      maxTokens,
      temperature: 0.7,
      timeoutMs: 120_000,
      log,
    });
    console.log(`\nStructured output: ${model.name} (${model.role}); ${formatMachine(describeMachine())}`);
    console.log(
      `${foreground} measured unconstrained streams (${maxTokens} tokens, ignore_eos) beside ${sequences - foreground} background ` +
        `clients; ${sequences} sequences, 1 thread.\n`,
    );
    console.log(formatTable(result));
    const verdict = result.constrainedVsControl >= 0.97 ? 'no slowdown beyond noise' : 'slower';
    console.log(
      `\nunconstrained tok/s beside constrained load / beside plain load, 4 alternated rounds = ${result.constrainedVsControl.toFixed(2)} (${verdict})`,
    );
    const errors = result.phases.reduce((sum, phase) => sum + phase.foreground.errors + (phase.background?.errors ?? 0), 0);
    if (errors > 0) {
      console.log(`${errors} requests failed: ${result.phases.find((phase) => phase.foreground.firstError)?.foreground.firstError ?? 'background'}`);
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * `npm run bench`: Tokenmill against node-llama-cpp called directly (the ceiling), closed-loop, on 127.0.0.1.
 * For each model: start the server as a child process; then, `--rounds` times (default 3), drive it with C concurrent
 * streaming clients per level, and run the same load shape in dist/bench/ceiling.js. Prints one table per model
 * (the rounds merged, bench/rounds.ts), each round's goal numbers, and the goal checks.
 * A MISS is a measurement: the exit code is non-zero only when the bench itself failed. Usage: see options.ts.
 */
import { writeFile } from 'node:fs/promises';
import { BENCH_MODELS, ensureBench58m, type BenchModel, servedModel } from './bench-models.js';
import type { CeilingResult } from './ceiling.js';
import { installChildCleanup, killAllChildren } from './child-processes.js';
import { describeMachine, formatMachine } from './machine.js';
import { parseBenchOptions, requestsForLevel, USAGE, type BenchOptions } from './options.js';
import { contendedLevels, formatCpuTable, formatGoalChecks, formatModelTable, formatRounds, goalChecks, OTHER_CORES_WARNING, type ModelReport } from './report.js';
import { runCeiling } from './run-ceiling.js';
import { runUniquePrompts, type ServerLevel } from './scenarios/unique-prompts.js';
import { mergeCeilingRounds, mergeServerRounds } from './rounds.js';
import { startTokenmill, type TokenmillServer } from './server-process.js';

/** llama.cpp threads of server and ceiling: 1 is fastest on this class of machine (docs/benchmarks.md). */
const THREADS = 1;
/** Context tokens per sequence. */
const CONTEXT_SIZE = 2048;
const TEMPERATURE = 0.7;
/** Model load deadline, ms. */
const READY_TIMEOUT_MS = 120_000;
/** Deadline of one model's whole ceiling run, ms. */
const CEILING_TIMEOUT_MS = 600_000;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

async function main(): Promise<void> {
  installChildCleanup();
  const options = parseBenchOptions(process.argv.slice(2));
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  const machine = describeMachine();
  const command = ['node', 'dist/bench/run.js', ...process.argv.slice(2)].join(' ');
  log(formatMachine(machine));
  if (options.models.includes('bench58m')) await ensureBench58m(log);

  const started = Date.now();
  const reports: ModelReport[] = [];
  for (const name of options.models) reports.push(await benchModel(BENCH_MODELS[name], options));
  const checks = goalChecks(reports);

  console.log(`\nTokenmill bench: ${formatMachine(machine)}`);
  console.log(`command: ${command}`);
  console.log(
    `config: ${options.sequences} sequences, ${THREADS} thread (the server's big batches: batch_threads auto), context ${CONTEXT_SIZE}/sequence; ` +
      `${options.endpoint} endpoint, streaming, ${options.maxTokens} output tokens (ignore_eos), temperature ${TEMPERATURE}`,
  );
  for (const report of reports) {
    const ceilingPrompt = report.ceiling ? `, ceiling prompt ${report.ceiling.promptTokens} tokens` : '';
    console.log(
      `\n### ${report.model.name} (${report.model.role}); flash attention ${report.model.flashAttention}; ` +
        `server prompt ${report.promptTokens.toFixed(0)} tokens${ceilingPrompt}\n`,
    );
    console.log(formatModelTable(report));
    if (report.rounds.length > 1) console.log(`\nPer round: ${formatRounds(report)}`);
    console.log(`\nCPU per output token (${report.model.name}):\n`);
    console.log(formatCpuTable(report));
  }
  console.log(`\nGoals:\n${formatGoalChecks(checks)}`);
  const contended = contendedLevels(reports);
  if (contended.length > 0) {
    console.log(`\nWARNING: other processes used more than ${OTHER_CORES_WARNING} cores during ${contended.join(', ')}: rerun on a quiet machine.`);
  }
  console.log(`\nbench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (options.jsonPath !== null) {
    const json = { date: new Date().toISOString(), command, machine, options, reports, checks };
    await writeFile(options.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    log(`wrote ${options.jsonPath}`);
  }
}

/**
 * The server, then the ceiling, `rounds` times over (alternated, so that drift hits both alike; bench/rounds.ts).
 * The server's first round tells the prompt length the chat template gives; the ceiling uses that length.
 */
async function benchModel(model: BenchModel, options: BenchOptions): Promise<ModelReport> {
  log(`${model.name}: starting Tokenmill`);
  const server = await startTokenmill({
    ...servedModel(model),
    sequences: options.sequences,
    threads: THREADS,
    contextSize: CONTEXT_SIZE,
    readyTimeoutMs: READY_TIMEOUT_MS,
  });
  const serverRounds: ServerLevel[][] = [];
  const ceilingRounds: CeilingResult[] = [];
  let promptTokens = options.promptTokens;
  try {
    for (let round = 0; round < options.rounds; round++) {
      if (options.rounds > 1) log(`${model.name}: round ${round + 1} of ${options.rounds}`);
      const levels = await measureServer(server, model, options);
      serverRounds.push(levels);
      if (round === 0) promptTokens = levels.find((level) => Number.isFinite(level.promptTokensMean))?.promptTokensMean ?? options.promptTokens;
      const ceiling = options.skipCeiling ? null : await measureCeiling(model, options, Math.round(promptTokens));
      if (ceiling) ceilingRounds.push(ceiling);
    }
  } finally {
    await server.stop();
  }
  return {
    model,
    promptTokens,
    server: mergeServerRounds(serverRounds),
    ceiling: mergeCeilingRounds(ceilingRounds),
    rounds: serverRounds.map((server, index) => ({ server, ceiling: ceilingRounds[index] ?? null })),
  };
}

/** Runs the unique-prompt levels once on the running server. */
async function measureServer(server: TokenmillServer, model: BenchModel, options: BenchOptions): Promise<ServerLevel[]> {
  try {
    const result = await runUniquePrompts({
      baseUrl: server.baseUrl,
      modelId: model.id,
      endpoint: options.endpoint,
      concurrency: options.concurrency,
      requestsForLevel: (concurrency) => requestsForLevel(options, concurrency, model.name),
      maxTokens: options.maxTokens,
      promptTokens: options.promptTokens,
      temperature: TEMPERATURE,
      timeoutMs: options.requestTimeoutMs,
      serverCpuMs: () => server.cpuMs(),
      log: (line) => log(`${model.name}: ${line}`),
    });
    return result.levels;
  } catch (error) {
    throw new Error(`${(error as Error).message}\nserver log (last lines):\n${server.logTail()}`);
  }
}

/** The ceiling, or null (with a log line) when its process failed: the server numbers still stand. */
async function measureCeiling(model: BenchModel, options: BenchOptions, promptTokens: number): Promise<CeilingResult | null> {
  log(`${model.name}: measuring the ceiling (node-llama-cpp directly, ${promptTokens} prompt tokens)`);
  try {
    return await runCeiling({
      modelPath: model.path,
      flashAttention: model.flashAttention,
      concurrency: options.concurrency,
      requests: options.concurrency.map((concurrency) => requestsForLevel(options, concurrency, model.name)),
      sequences: options.sequences,
      threads: THREADS,
      contextSize: CONTEXT_SIZE,
      maxTokens: options.maxTokens,
      promptTokens,
      temperature: TEMPERATURE,
      timeoutMs: CEILING_TIMEOUT_MS,
    });
  } catch (error) {
    log(`${model.name}: ceiling failed: ${(error as Error).message}`);
    return null;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  killAllChildren();
  process.exit(1);
});

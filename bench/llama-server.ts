/**
 * Tokenmill against llama.cpp's own llama-server on the same machine, model and load (the anchor of
 * ../shared/anchors/perf.md, measured here rather than quoted from another host).
 *
 *   node dist/bench/llama-server.js [--binary PATH] [--models stories,bench58m] [--concurrency 1,4,8,16]
 *     [--rounds 2] [--sequences 16] [--requests N] [--llama-args "-kvu"]
 *
 * llama-server is not an npm package: point `--binary` (or LLAMA_SERVER) at one built from the llama.cpp that
 * node-llama-cpp 3.21.1 bundles (bench/README.md says how). Without one, the script says so and exits 0.
 * Both servers get the same model, 16 sequences (slots), context 2048 per sequence, 1 thread for small steps and all
 * cores for batches (llama-server: -t 1 -tb <cores>), the same flash-attention setting, and the same load: the
 * unique-prompt scenario of `run.js` on /v1/completions (raw prompts, so no chat template differs; a connection per
 * request, since llama-server dropped reused and kept-alive ones), measured
 * alternately `--rounds` times and merged as run.js merges them.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { BENCH_MODELS, ensureBench58m, servedModel, type BenchModel } from './bench-models.js';
import { installChildCleanup } from './child-processes.js';
import { describeMachine, formatMachine } from './machine.js';
import { MODEL_NAMES, parsePositiveInteger, parsePositiveIntegerList, requestsForLevel, type ModelName } from './options.js';
import { mergeServerRounds } from './rounds.js';
import { runUniquePrompts, type ServerLevel } from './scenarios/unique-prompts.js';
import { freePort, startTokenmill, watchServer, type TokenmillServer } from './server-process.js';

const CONTEXT_SIZE = 2048;
const TEMPERATURE = 0.7;
const MAX_TOKENS = 128;
const PROMPT_TOKENS = 100;
const READY_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 120_000;

function log(line: string): void {
  process.stderr.write(`[llama-server bench] ${line}\n`);
}

async function startLlamaServer(binary: string, model: BenchModel, sequences: number, extraArgs: string[]): Promise<TokenmillServer> {
  const port = await freePort();
  const flashAttention = model.flashAttention === 'auto' ? 'auto' : model.flashAttention ? 'on' : 'off';
  const args = [
    '-m', model.path,
    '--host', '127.0.0.1',
    '--port', String(port),
    '-c', String(CONTEXT_SIZE * sequences),
    '-np', String(sequences),
    '-t', '1',
    '-tb', String(availableParallelism()),
    '-b', '512',
    '-fa', flashAttention,
    '--no-webui',
    ...extraArgs,
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return watchServer(child, `http://127.0.0.1:${port}`, '/health', READY_TIMEOUT_MS);
}

async function measure(server: TokenmillServer, model: BenchModel, modelId: string, concurrency: number[], requests: number | null, label: string): Promise<ServerLevel[]> {
  try {
    const result = await runUniquePrompts({
      baseUrl: server.baseUrl,
      modelId,
      endpoint: 'completions',
      concurrency,
      requestsForLevel: (level) => requestsForLevel({ requests }, level, model.name),
      maxTokens: MAX_TOKENS,
      promptTokens: PROMPT_TOKENS,
      temperature: TEMPERATURE,
      timeoutMs: REQUEST_TIMEOUT_MS,
      serverCpuMs: () => server.cpuMs(),
      keepAlive: false,
      log: (line) => log(`${model.name}: ${label} ${line.replace(/^server /, '')}`),
    });
    return result.levels;
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${label} log (last lines):\n${server.logTail()}`);
  }
}

function formatTable(tokenmill: ServerLevel[], llamaServer: ServerLevel[]): string {
  const rows = [
    '| C | Tokenmill tok/s | llama-server tok/s | Tokenmill / llama-server | TTFT p50 ms (llama-server) | TTFT p99 ms (llama-server) | ITL p50 ms (llama-server) | server CPU ms/tok (llama-server) | errors |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [index, ours] of tokenmill.entries()) {
    const theirs = llamaServer[index];
    const cpu = (level: ServerLevel) => (level.serverCpuMs === null || level.completionTokens === 0 ? NaN : level.serverCpuMs / level.completionTokens);
    rows.push(
      `| ${ours.concurrency} | ${ours.outputTokensPerSecond.toFixed(0)} | ${theirs.outputTokensPerSecond.toFixed(0)} | ` +
        `${(ours.outputTokensPerSecond / theirs.outputTokensPerSecond).toFixed(2)} | ` +
        `${ours.ttftMs.p50.toFixed(1)} (${theirs.ttftMs.p50.toFixed(1)}) | ${ours.ttftMs.p99.toFixed(1)} (${theirs.ttftMs.p99.toFixed(1)}) | ` +
        `${ours.interTokenMs.p50.toFixed(2)} (${theirs.interTokenMs.p50.toFixed(2)}) | ${cpu(ours).toFixed(3)} (${cpu(theirs).toFixed(3)}) | ` +
        `${ours.errors} (${theirs.errors}) |`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  installChildCleanup();
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      binary: { type: 'string' },
      models: { type: 'string', default: MODEL_NAMES.join(',') },
      concurrency: { type: 'string', default: '1,4,8,16' },
      rounds: { type: 'string', default: '2' },
      sequences: { type: 'string', default: '16' },
      requests: { type: 'string' },
      'llama-args': { type: 'string', default: '' },
    },
    strict: true,
  });
  const binary = values.binary ?? process.env.LLAMA_SERVER;
  if (binary === undefined || !existsSync(binary)) {
    console.log(
      `llama-server bench skipped: no llama-server binary (${binary === undefined ? 'pass --binary PATH or set LLAMA_SERVER' : `${binary} does not exist`}; bench/README.md says how to build one offline).`,
    );
    return;
  }
  const models = values.models.split(',').map((name) => {
    if (!(MODEL_NAMES as readonly string[]).includes(name)) throw new Error(`--models: unknown model ${name}`);
    return BENCH_MODELS[name as ModelName];
  });
  const concurrency = parsePositiveIntegerList(values.concurrency, '--concurrency');
  const rounds = parsePositiveInteger(values.rounds, '--rounds');
  const sequences = parsePositiveInteger(values.sequences, '--sequences');
  const requests = values.requests === undefined ? null : parsePositiveInteger(values.requests, '--requests');
  const extraArgs = values['llama-args'].split(' ').filter((arg) => arg.length > 0);
  const machine = describeMachine();
  const command = ['node', 'dist/bench/llama-server.js', ...process.argv.slice(2)].join(' ');
  if (models.some((model) => model.name === 'bench58m')) await ensureBench58m(log);

  const started = Date.now();
  const output: string[] = [];
  for (const model of models) {
    log(`${model.name}: starting Tokenmill and llama-server`);
    const tokenmill = await startTokenmill({
      ...servedModel(model),
      sequences,
      threads: 1,
      contextSize: CONTEXT_SIZE,
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    const ours: ServerLevel[][] = [];
    const theirs: ServerLevel[][] = [];
    try {
      const llamaServer = await startLlamaServer(binary, model, sequences, extraArgs);
      try {
        for (let round = 0; round < rounds; round++) {
          log(`${model.name}: round ${round + 1} of ${rounds}`);
          ours.push(await measure(tokenmill, model, model.id, concurrency, requests, 'Tokenmill'));
          theirs.push(await measure(llamaServer, model, model.id, concurrency, requests, 'llama-server'));
        }
      } finally {
        await llamaServer.stop();
      }
    } finally {
      await tokenmill.stop();
    }
    const perRound = ours
      .map((levels, round) => {
        const ratios = levels.map((level, index) => `C=${level.concurrency} ${(level.outputTokensPerSecond / theirs[round][index].outputTokensPerSecond).toFixed(2)}`);
        return `${round + 1}: ${ratios.join(', ')}`;
      })
      .join('; ');
    output.push(
      `\n### ${model.name} (${model.role}); flash attention ${model.flashAttention}\n`,
      formatTable(mergeServerRounds(ours), mergeServerRounds(theirs)),
      `\nTokenmill / llama-server per round: ${perRound}`,
    );
  }
  console.log(`\nTokenmill vs llama-server: ${formatMachine(machine)}`);
  console.log(`command: ${command}`);
  console.log(
    `config: ${sequences} sequences (slots), context ${CONTEXT_SIZE} per sequence, 1 thread for small steps and ${availableParallelism()} for batches, ` +
      `/v1/completions streaming, ${MAX_TOKENS} output tokens (ignore_eos), temperature ${TEMPERATURE}, about ${PROMPT_TOKENS} unique prompt tokens; ` +
      `llama-server ${binary}${extraArgs.length > 0 ? ` ${extraArgs.join(' ')}` : ''}`,
  );
  console.log(output.join('\n'));
  console.log(`\nbench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});

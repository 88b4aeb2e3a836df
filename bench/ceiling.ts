/**
 * The ceiling: what node-llama-cpp delivers when called directly, with no HTTP and no Tokenmill code in between.
 * Runs as its own process (so it shares no event loop with anything) and prints one JSON line, a CeilingResult:
 *
 *   node dist/bench/ceiling.js --model PATH --concurrency 1,4,8,16 --requests 8,8,16,32 \
 *     [--sequences 16] [--threads 1] [--context-size 2048] [--max-tokens 128] [--prompt-tokens 100] [--temperature 0.7]
 *     [--flash-attention auto|true|false]
 *
 * Like the server: one context with `sequences` sequences; at concurrency C, C sequences run requests in waves (see
 * runLevel): clear the sequence, evaluate a unique prompt, take `maxTokens` tokens.
 * Unlike the server, end-of-generation tokens are yielded and generation goes on (`yieldEogToken`), where the server
 * bans them with a token bias (`ignore_eos`): the ceiling pays for no bias.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type LlamaContextSequence, type LlamaModel, type SequenceEvaluateOptions, type Token } from 'node-llama-cpp';
import { parsePositiveIntegerList, parsePositiveInteger } from './options.js';
import { machineBusyMs, ownCpuMs } from './process-cpu.js';
import { uniquePromptText } from './prompts.js';
import { summarize, type Summary } from './stats.js';

export interface CeilingLevel {
  concurrency: number;
  requests: number;
  /** ms from the first evaluate to the last token of the level. */
  wallMs: number;
  /** Generated tokens in all. */
  completionTokens: number;
  /** CPU time of the ceiling process (all threads, llama.cpp's included) during the level, ms. */
  cpuMs: number;
  /** CPU time of everything else on the machine during the level, ms (should be near 0); null when unknown. */
  otherCpuMs: number | null;
  /** Generated tokens / wall time, tokens per second. */
  outputTokensPerSecond: number;
  requestsPerSecond: number;
  /** From clearing the sequence and calling evaluate to the first token, ms. */
  ttftMs: Summary;
  /** Gaps between consecutive tokens of one sequence, ms. */
  interTokenMs: Summary;
}

export interface CeilingResult {
  modelPath: string;
  sequences: number;
  threads: number;
  /** Prompt tokens per request (BOS included). */
  promptTokens: number;
  levels: CeilingLevel[];
}

/** What the ceiling measures: the server's model and load shape, without HTTP. */
export interface CeilingOptions {
  modelPath: string;
  concurrency: number[];
  /** Requests per level, aligned with `concurrency`. */
  requests: number[];
  sequences: number;
  threads: number;
  /** Tokens per sequence. */
  contextSize: number;
  maxTokens: number;
  promptTokens: number;
  temperature: number;
  /** llama.cpp flash attention, as the server's catalog sets it. */
  flashAttention: boolean | 'auto';
}

interface GenerationTiming {
  tokens: number;
  ttftMs: number;
  interTokenMs: number[];
}

async function main(): Promise<void> {
  const options = readOptions();
  const llama = await getLlama({ build: 'never', logLevel: LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  const context = await model.createContext({
    sequences: options.sequences,
    contextSize: options.contextSize,
    batchSize: Math.min(512, options.contextSize * options.sequences),
    threads: options.threads,
    flashAttention: options.flashAttention,
  });
  const sequences = Array.from({ length: options.sequences }, () => context.getSequence({ contextShift: { size: 0 } }));
  // Warm-up: the first evaluation allocates buffers.
  await generate(sequences[0], promptTokens(model, options.promptTokens), 16, evaluateOptions(options.temperature));

  const levels: CeilingLevel[] = [];
  for (const [index, concurrency] of options.concurrency.entries()) {
    if (concurrency > options.sequences) throw new Error(`concurrency ${concurrency} exceeds --sequences ${options.sequences}`);
    const level = await runLevel(model, sequences.slice(0, concurrency), options.requests[index], options);
    process.stderr.write(`ceiling C=${concurrency}: ${level.outputTokensPerSecond.toFixed(0)} tok/s\n`);
    levels.push(level);
  }
  const result: CeilingResult = {
    modelPath: options.modelPath,
    sequences: options.sequences,
    threads: options.threads,
    promptTokens: options.promptTokens,
    levels,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await context.dispose();
  await model.dispose();
}

/**
 * `requests` requests over the given sequences, in waves: each sequence runs one request, then all wait for the
 * slowest. Requests are all alike (same prompt length, same output length), so the waves of a closed loop would end
 * together anyway; the barrier keeps them so. Without it, one sequence out of step has to erase its state while the
 * others generate, and node-llama-cpp makes that erase wait until they all stop (bench/probes/erase-wait.ts): the
 * ceiling would measure that library stall instead of the best the library can do.
 */
async function runLevel(
  model: LlamaModel,
  sequences: LlamaContextSequence[],
  requests: number,
  options: CeilingOptions,
): Promise<CeilingLevel> {
  const timings: GenerationTiming[] = [];
  const started = performance.now();
  const cpuBefore = ownCpuMs();
  const busyBefore = machineBusyMs();
  for (let done = 0; done < requests; done += sequences.length) {
    const wave = sequences.slice(0, Math.min(sequences.length, requests - done));
    const prompts = wave.map(() => promptTokens(model, options.promptTokens));
    timings.push(
      ...(await Promise.all(
        wave.map((sequence, index) => generate(sequence, prompts[index], options.maxTokens, evaluateOptions(options.temperature))),
      )),
    );
  }
  const wallMs = performance.now() - started;
  const cpuMs = ownCpuMs() - cpuBefore;
  const busyAfter = machineBusyMs();
  const otherCpuMs = busyBefore === null || busyAfter === null ? null : Math.max(0, busyAfter - busyBefore - cpuMs);
  const tokens = timings.reduce((sum, timing) => sum + timing.tokens, 0);
  return {
    concurrency: sequences.length,
    requests,
    wallMs,
    completionTokens: tokens,
    cpuMs,
    otherCpuMs,
    outputTokensPerSecond: tokens / (wallMs / 1000),
    requestsPerSecond: requests / (wallMs / 1000),
    ttftMs: summarize(timings.map((timing) => timing.ttftMs)),
    interTokenMs: summarize(timings.flatMap((timing) => timing.interTokenMs)),
  };
}

/** One request on one sequence: forget its previous state, evaluate the prompt, take `maxTokens` tokens. */
async function generate(
  sequence: LlamaContextSequence,
  prompt: Token[],
  maxTokens: number,
  options: SequenceEvaluateOptions,
): Promise<GenerationTiming> {
  const timing: GenerationTiming = { tokens: 0, ttftMs: Number.NaN, interTokenMs: [] };
  const started = performance.now();
  // Inside the TTFT window: the server must erase a sequence's previous state too, and it waits for the context lock.
  await sequence.clearHistory();
  let last = started;
  for await (const token of sequence.evaluate(prompt, options)) {
    void token;
    const now = performance.now();
    if (timing.tokens === 0) timing.ttftMs = now - started;
    else timing.interTokenMs.push(now - last);
    last = now;
    if (++timing.tokens >= maxTokens) break;
  }
  return timing;
}

/** The server's sampler chain for `temperature` with OpenAI's other defaults (top_p 1, top_k and min_p off). */
function evaluateOptions(temperature: number): SequenceEvaluateOptions {
  return {
    temperature,
    topK: 0,
    topP: 1,
    minP: 0,
    seed: Math.floor(Math.random() * 0xffffffff),
    yieldEogToken: true,
  };
}

/** A unique prompt of exactly `count` tokens, BOS first when the model wants one (as the server tokenizes). */
function promptTokens(model: LlamaModel, count: number): Token[] {
  const tokens = model.tokenize(uniquePromptText(count), false);
  const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
  const withBos = bos === null ? tokens : [bos, ...tokens];
  return withBos.slice(0, count);
}

function readOptions(): CeilingOptions {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      concurrency: { type: 'string', default: '1,4,8,16' },
      requests: { type: 'string' },
      sequences: { type: 'string', default: '16' },
      threads: { type: 'string', default: '1' },
      'context-size': { type: 'string', default: '2048' },
      'max-tokens': { type: 'string', default: '128' },
      'prompt-tokens': { type: 'string', default: '100' },
      temperature: { type: 'string', default: '0.7' },
      'flash-attention': { type: 'string', default: 'auto' },
      'exit-with-parent': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.model === undefined) throw new Error('--model is required');
  const concurrency = parsePositiveIntegerList(values.concurrency, '--concurrency');
  const requests = values.requests === undefined
    ? concurrency.map((level) => Math.max(2 * level, 8))
    : parsePositiveIntegerList(values.requests, '--requests');
  if (requests.length !== concurrency.length) throw new Error('--requests needs one count per --concurrency level');
  const temperature = Number(values.temperature);
  if (!Number.isFinite(temperature) || temperature < 0) throw new Error(`--temperature must be >= 0, got ${values.temperature}`);
  if (values['exit-with-parent']) exitWithParent();
  return {
    modelPath: values.model,
    concurrency,
    requests,
    sequences: parsePositiveInteger(values.sequences, '--sequences'),
    threads: parsePositiveInteger(values.threads, '--threads'),
    contextSize: parsePositiveInteger(values['context-size'], '--context-size'),
    maxTokens: parsePositiveInteger(values['max-tokens'], '--max-tokens'),
    promptTokens: parsePositiveInteger(values['prompt-tokens'], '--prompt-tokens'),
    temperature,
    flashAttention: parseFlashAttention(values['flash-attention']),
  };
}

function parseFlashAttention(text: string): boolean | 'auto' {
  if (text === 'auto') return 'auto';
  if (text === 'true' || text === 'false') return text === 'true';
  throw new Error(`--flash-attention must be auto, true or false, got '${text}'`);
}

/** The parent holds our stdin open; when it dies, stdin ends and so do we (no orphaned process). */
function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(1));
  process.stdin.on('error', () => process.exit(1));
  process.stdin.resume();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`ceiling failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

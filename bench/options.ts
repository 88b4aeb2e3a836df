import { parseArgs } from 'node:util';

/** Which models the bench knows, by their `--models` name. */
export const MODEL_NAMES = ['stories', 'bench58m'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export type Endpoint = 'chat' | 'completions';

export interface BenchOptions {
  models: ModelName[];
  /** Concurrent clients per level. */
  concurrency: number[];
  /** Requests per level and round; null: see requestsForLevel. */
  requests: number | null;
  /** Server and ceiling measured alternately this many times (bench/rounds.ts). */
  rounds: number;
  /** Where to write the results as JSON; null: nowhere. */
  jsonPath: string | null;
  skipCeiling: boolean;
  endpoint: Endpoint;
  /** Output tokens per request. */
  maxTokens: number;
  /** Prompt tokens per request, about (the server's chat template adds a few). */
  promptTokens: number;
  /** Parallel sequences of the server's context and of the ceiling's. */
  sequences: number;
  /** Deadline of each request, ms. */
  requestTimeoutMs: number;
}

export const USAGE = `Usage: node dist/bench/run.js [options]
  --models LIST         models to run, of ${MODEL_NAMES.join(',')} (default: all)
  --concurrency LIST    concurrent clients per level (default 1,4,8,16)
  --rounds N            server and ceiling measured alternately N times, then merged (default 3)
  --requests N          requests per level and round (default: at C=1 32 on stories, 12 on bench58m; else
                        max(8*C, 32) on stories, max(2*C, 8) on bench58m)
  --json PATH           also write the results as JSON
  --skip-ceiling        do not measure node-llama-cpp called directly
  --endpoint NAME       chat (/v1/chat/completions, default) or completions (/v1/completions)
  --max-tokens N        output tokens per request (default 128)
  --prompt-tokens N     prompt tokens per request, about (default 100)
  --sequences N         context sequences of server and ceiling (default 16; must be >= the largest level)
  --timeout-ms N        deadline of each request, ms (default 120000)`;

export function parseBenchOptions(args: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args,
    options: {
      models: { type: 'string', default: MODEL_NAMES.join(',') },
      concurrency: { type: 'string', default: '1,4,8,16' },
      requests: { type: 'string' },
      json: { type: 'string' },
      'skip-ceiling': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      endpoint: { type: 'string', default: 'chat' },
      'max-tokens': { type: 'string', default: '128' },
      'prompt-tokens': { type: 'string', default: '100' },
      sequences: { type: 'string', default: '16' },
      'timeout-ms': { type: 'string', default: '120000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const endpoint = values.endpoint;
  if (endpoint !== 'chat' && endpoint !== 'completions') throw new Error(`--endpoint must be chat or completions, got ${endpoint}`);
  const concurrency = parsePositiveIntegerList(values.concurrency, '--concurrency');
  const sequences = parsePositiveInteger(values.sequences, '--sequences');
  if (Math.max(...concurrency) > sequences) {
    throw new Error(`--sequences ${sequences} is below the largest concurrency level: requests would queue`);
  }
  return {
    models: parseModels(values.models),
    concurrency,
    requests: values.requests === undefined ? null : parsePositiveInteger(values.requests, '--requests'),
    rounds: parsePositiveInteger(values.rounds, '--rounds'),
    jsonPath: values.json ?? null,
    skipCeiling: values['skip-ceiling'],
    endpoint,
    maxTokens: parsePositiveInteger(values['max-tokens'], '--max-tokens'),
    promptTokens: parsePositiveInteger(values['prompt-tokens'], '--prompt-tokens'),
    sequences,
    requestTimeoutMs: parsePositiveInteger(values['timeout-ms'], '--timeout-ms'),
  };
}

/**
 * Requests of the level with `concurrency` clients, per round: the fixed count, else at C = 1 32 on the tiny model
 * and 12 on bench58m (three rounds make 36, about 30 s), and above it max(2 * C, 8) on bench58m and max(8 * C, 32)
 * on the tiny model, whose levels would otherwise last about a second (too short to stand above the machine's noise).
 */
export function requestsForLevel(options: Pick<BenchOptions, 'requests'>, concurrency: number, model: ModelName): number {
  if (options.requests !== null) return options.requests;
  if (concurrency === 1) return model === 'stories' ? 32 : 12;
  return model === 'stories' ? Math.max(8 * concurrency, 32) : Math.max(2 * concurrency, 8);
}

function parseModels(text: string): ModelName[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  if (names.length === 0) throw new Error('--models is empty');
  return names.map((name) => {
    if (!isModelName(name)) throw new Error(`--models: unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
    return name;
  });
}

function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

export function parsePositiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} must be a positive integer, got '${text}'`);
  return value;
}

export function parsePositiveIntegerList(text: string, flag: string): number[] {
  const values = text.split(',').map((item) => parsePositiveInteger(item.trim(), flag));
  if (values.length === 0) throw new Error(`${flag} is empty`);
  return values;
}

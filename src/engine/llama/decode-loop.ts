import type { LlamaContext, LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from 'node-llama-cpp';
import type { SequenceInternals } from './native-context.js';

/**
 * Tokenmill's own continuous-batching loop over one llama.cpp context (docs/decisions/0018-own-decode-loop.md).
 *
 * node-llama-cpp's `sequence.evaluate()` costs a JavaScript round trip per token and sequence (context lock, sampler
 * config rebuilt, generator hand-offs, a batch dispatch scheduled on the next event-loop turn) that, on small models,
 * takes longer than llama.cpp's decode itself. This loop drives the same native context directly: every step adds the
 * pending tokens of all running generations to one batch, decodes it, samples each generation's next token (the
 * samples run in parallel on libuv's pool), and starts the next step at once. Tokens reach their consumers while that
 * next decode runs (or, for a decode on every core, while it is sampled), so a request's own work (detokenizing,
 * stop strings, SSE) never sits between two decodes.
 *
 * Sequences are node-llama-cpp's `LlamaContextSequence` objects (their ids and token lists, which the prefix cache and
 * NativeContextHooks read), kept as node-llama-cpp keeps them: a token joins the list once its decode ended. Every
 * decode of the context must go through this loop (never `sequence.evaluate()`): two batch builders on one native
 * context would mix their batches.
 */

/** The native context methods the loop calls (node-llama-cpp 3.21.1's `AddonContext`). */
interface NativeBatchContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
  sampleToken(batchLogitIndex: number, sampler: NativeSampler): Promise<number>;
  sampleToken(
    batchLogitIndex: number,
    sampler: NativeSampler,
    probabilities: boolean,
    confidence: boolean,
  ): Promise<[token: number, probabilities: number[] | undefined, confidence: number | undefined]>;
}

/** node-llama-cpp's `AddonSampler`: a llama.cpp sampler chain (penalties, biases, grammar, top-k/p, min-p, temperature, seed). */
interface NativeSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

/** The private members of LlamaContextSequence the loop reads and maintains. */
interface LoopSequence extends SequenceInternals {
  /** Turns evaluate options into the native sampler's config (node-llama-cpp's own mapping, so sampling is unchanged). */
  _resolveSamplerConfig(options: SequenceEvaluateOptions): object;
}

export interface GeneratedToken {
  token: Token;
  /** The candidates' probabilities, most likely first, when the generation asked for them. */
  probabilities: Map<Token, number> | null;
}

export interface SamplingSpec {
  /** Sampler options, as for `sequence.evaluate()` (temperature, top-k/p, min-p, seed, biases, penalties, grammar). */
  options: SequenceEvaluateOptions;
  /** Whether the options change between tokens (penalty history, a bias that depends on the count): re-applied each time. */
  dynamic: boolean;
  probabilities: boolean;
  /**
   * Called with each sampled token, in the loop, before the next step is planned: whether to evaluate it and sample
   * another. Must be quick and must not throw. The token is delivered to the consumer either way.
   */
  continueAfter(token: Token): boolean;
}

export interface GenerationSpec {
  sequence: LlamaContextSequence;
  /** Tokens to evaluate from the sequence's next position, at least one. */
  tokens: readonly Token[];
  /** How to sample after the tokens; null: evaluate them only. */
  sampling: SamplingSpec | null;
}

/** One generation: its tokens as an async iterable (it throws the engine's error, if one happens). */
export interface Generation extends AsyncIterable<GeneratedToken> {
  /** Asks for no more tokens; the step in progress (if any) still ends. */
  stop(): void;
  /** Settles (never rejects) when the sequence is idle: no decode of this generation is in progress or planned. */
  readonly finished: Promise<void>;
}

const NO_LOGITS = new Uint32Array(0);
const FIRST_LOGIT = Uint32Array.of(0);

export class DecodeLoop {
  private readonly jobs: Job[] = [];
  private running = false;
  private closed = false;
  /** Generations with new tokens or an end their consumers have not been told of yet. */
  private readonly waiting: Job[] = [];
  private readonly one = new Uint32Array(1);

  private constructor(
    private readonly native: NativeBatchContext,
    private readonly createSampler: () => NativeSampler,
    private readonly batchSize: number,
    private readonly contextSize: number,
    private readonly planThreadsOnAllCores: (batchTokens: number, generating: boolean) => boolean,
  ) {}

  /**
   * Throws when node-llama-cpp's private shape is not the expected one (it is pinned to 3.21.1).
   * `planThreadsOnAllCores(tokens, generating)`: called once per step, before its decode, with the batch's size and whether it
   * holds a single token (a generation's next one); decides the step's threads (NativeContextHooks.planThreads) and
   * says whether they are all the cores.
   */
  static attach(context: LlamaContext, model: LlamaModel, planThreadsOnAllCores: (batchTokens: number, generating: boolean) => boolean = () => false): DecodeLoop {
    const native = (context as unknown as { _ctx?: Partial<NativeBatchContext> })._ctx;
    const bindings = (model as unknown as { _llama?: { _bindings?: { AddonSampler?: new (model: unknown) => NativeSampler } } })._llama
      ?._bindings;
    const nativeModel = (model as unknown as { _model?: unknown })._model;
    const Sampler = bindings?.AddonSampler;
    const methods = ['initBatch', 'addToBatch', 'decodeBatch', 'removeTokenCellsFromSequence', 'sampleToken'] as const;
    if (!native || methods.some((method) => typeof native[method] !== 'function') || typeof Sampler !== 'function' || !nativeModel) {
      throw new Error('This node-llama-cpp build does not have the expected native context; Tokenmill needs node-llama-cpp 3.21.1.');
    }
    return new DecodeLoop(native as NativeBatchContext, () => new Sampler(nativeModel), context.batchSize, context.contextSize, planThreadsOnAllCores);
  }

  /** Starts a generation on an idle sequence. */
  generate(spec: GenerationSpec): Generation {
    const sequence = spec.sequence as unknown as LoopSequence;
    if (typeof sequence._resolveSamplerConfig !== 'function' || !Array.isArray(sequence._contextTokens)) {
      throw new Error('This node-llama-cpp build does not have the expected sequence; Tokenmill needs node-llama-cpp 3.21.1.');
    }
    const job = new Job(sequence, [...spec.tokens], spec.sampling);
    if (this.closed) job.fail(new Error('The model is shutting down.'));
    else if (job.pending.length === 0) job.fail(new Error('A generation needs at least one token to evaluate.'));
    else {
      // The sampler is built while the generation's first decode runs (step), off the time to first token.
      this.jobs.push(job);
      if (!this.running) void this.drive();
    }
    return job;
  }

  /** Refuses new generations and stops the running ones; resolves when the loop is idle. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs) job.stop();
    await Promise.all(this.jobs.map((job) => job.finished));
  }

  private async drive(): Promise<void> {
    this.running = true;
    try {
      while (this.jobs.length > 0) {
        try {
          await this.step();
        } catch (error) {
          // Not a decode's failure (those fail their own generations): the batch could not be built. Nothing is
          // in flight; every running generation fails and its sequence starts over, and the loop goes on.
          for (const job of [...this.jobs]) this.abandon(job, error);
        }
      }
    } finally {
      this.running = false;
      this.wakeConsumers();
    }
  }

  /** Hands the tokens (and ends) of the last step to their consumers. */
  private wakeConsumers(): void {
    for (const job of this.waiting.splice(0)) job.notify();
  }

  /** One decode step over every running generation, then one sample for each that needs a token. */
  private async step(): Promise<void> {
    const batch = this.plan();
    if (batch.length === 0) {
      this.wakeConsumers();
      return;
    }
    const native = this.native;
    let size = 0;
    for (const item of batch) size += item.count;
    native.initBatch(size);
    for (const item of batch) {
      const job = item.job;
      let tokens: Uint32Array;
      if (item.count === 1) {
        this.one[0] = job.pending[job.offset];
        tokens = this.one;
      } else tokens = Uint32Array.from(job.pending.slice(job.offset, job.offset + item.count));
      const logits = !item.sample ? NO_LOGITS : item.count === 1 ? FIRST_LOGIT : Uint32Array.of(item.count - 1);
      item.logitIndex = native.addToBatch(job.sequence._sequenceId, job.sequence._nextTokenIndex, tokens, logits)[0] ?? -1;
    }
    // The consumers of the last step's tokens run while llama.cpp decodes this step (pipelining), unless the decode
    // runs on every core: llama.cpp's threads wait for each other spinning, and one that loses its core to this
    // thread stalls the whole step. They then run while the step's tokens are sampled.
    const overlap = !this.planThreadsOnAllCores(size, batch.some((item) => item.count === 1));
    const decode = native.decodeBatch();
    if (overlap) this.wakeConsumers();
    for (const { job } of batch) if (job.sampling !== null && job.sampler === null && job.samplerError === null) this.buildSampler(job);
    try {
      await decode;
      if (!overlap) this.wakeConsumers();
    } catch (error) {
      // What a failed decode left in the KV cache is unknown: the sequences start over.
      for (const { job } of batch) this.abandon(job, error);
      return;
    }
    const toSample: PlannedItem[] = [];
    for (const item of batch) {
      const job = item.job;
      const sequence = job.sequence;
      for (let index = 0; index < item.count; index++) sequence._contextTokens.push(job.pending[job.offset + index]);
      sequence._nextTokenIndex += item.count;
      job.offset += item.count;
      if (job.samplerError !== null) {
        this.fail(job, job.samplerError);
        continue;
      }
      if (job.offset < job.pending.length) continue;
      if (!item.sample || job.stopped) {
        this.end(job);
        continue;
      }
      toSample.push(item);
    }
    if (toSample.length === 0) return;
    // llama.cpp puts the batch's outputs back in batch order lazily, in the first call that reads them, and that
    // reordering is not thread-safe: the first sample runs alone, then the others in parallel on libuv's pool.
    await this.sample(toSample[0].job, toSample[0].logitIndex);
    if (toSample.length > 1) await Promise.all(toSample.slice(1).map((item) => this.sample(item.job, item.logitIndex)));
  }

  /**
   * The tokens of the next step: one for each generating sequence first (their inter-token latency), then prompt
   * chunks in arrival order while the batch has room (chunked prefill). Stopped generations with nothing in flight end.
   */
  private plan(): PlannedItem[] {
    const batch: PlannedItem[] = [];
    let room = this.batchSize;
    for (let pass = 0; pass < 2; pass++) {
      for (let index = 0; index < this.jobs.length && room > 0; index++) {
        const job = this.jobs[index];
        const left = job.pending.length - job.offset;
        if (pass === 0 ? left !== 1 : left <= 1) continue;
        if (job.stopped) {
          this.end(job);
          index--;
          continue;
        }
        const count = Math.min(left, room);
        if (job.sequence._nextTokenIndex + count > this.contextSize) {
          this.fail(job, new Error(`The sequence would exceed the context size (${this.contextSize} tokens).`));
          index--;
          continue;
        }
        batch.push({ job, count, sample: job.sampling !== null && count === left, logitIndex: -1 });
        room -= count;
      }
    }
    // Sequences in id order: llama.cpp's per-sequence KV streams split a batch into micro-batches of consecutive
    // sequence ids, so this order gives the fewest micro-batches (one for a step that only generates).
    if (batch.length > 1) batch.sort((a, b) => a.job.sequence._sequenceId - b.job.sequence._sequenceId);
    return batch;
  }

  /** Builds a generation's native sampler (configured once; again per token only when `dynamic`). */
  private buildSampler(job: Job): void {
    try {
      const sampler = this.createSampler();
      job.sampler = sampler;
      sampler.applyConfig(job.sequence._resolveSamplerConfig(job.sampling!.options));
    } catch (error) {
      job.samplerError = error ?? new Error('The sampler could not be configured.');
    }
  }

  private async sample(job: Job, logitIndex: number): Promise<void> {
    const sampling = job.sampling!;
    try {
      if (sampling.dynamic) job.sampler!.applyConfig(job.sequence._resolveSamplerConfig(sampling.options));
      let token: number;
      let probabilities: Map<Token, number> | null = null;
      if (sampling.probabilities) {
        const [sampled, candidates] = await this.native.sampleToken(logitIndex, job.sampler!, true, false);
        token = sampled;
        if (candidates !== undefined) probabilities = candidateMap(candidates);
      } else token = await this.native.sampleToken(logitIndex, job.sampler!);
      if (token === -1) throw new Error('llama.cpp failed to sample the next token.');
      const more = !job.stopped && sampling.continueAfter(token as Token);
      job.deliver({ token: token as Token, probabilities });
      this.waiting.push(job);
      if (more) {
        job.pending = [token as Token];
        job.offset = 0;
      } else this.end(job);
    } catch (error) {
      this.fail(job, error);
    }
  }

  private end(job: Job): void {
    job.end();
    this.waiting.push(job);
    this.remove(job);
  }

  private fail(job: Job, error: unknown): void {
    job.fail(error);
    this.waiting.push(job);
    this.remove(job);
  }

  private remove(job: Job): void {
    const index = this.jobs.indexOf(job);
    if (index >= 0) this.jobs.splice(index, 1);
  }

  /** Fails a generation whose sequence's KV state is unknown (a failed decode or batch): the sequence starts over. */
  private abandon(job: Job, error: unknown): void {
    const sequence = job.sequence;
    this.native.removeTokenCellsFromSequence(sequence._sequenceId, 0, -1);
    sequence._contextTokens.splice(0);
    sequence._nextTokenIndex = 0;
    this.fail(job, error);
  }
}

interface PlannedItem {
  job: Job;
  count: number;
  /** Whether a token is sampled after this chunk (its last token's logits are computed). */
  sample: boolean;
  /** Where the chunk's logits are in the batch, once added. */
  logitIndex: number;
}

class Job implements Generation {
  /** Tokens to evaluate; those before `offset` are done. */
  pending: Token[];
  offset = 0;
  sampler: NativeSampler | null = null;
  /** Why the sampler could not be built; the generation fails once its decode in flight ended. */
  samplerError: unknown = null;
  stopped = false;
  private readonly queue: GeneratedToken[] = [];
  private head = 0;
  private done = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;
  private settle!: () => void;
  readonly finished: Promise<void>;

  constructor(
    readonly sequence: LoopSequence,
    tokens: Token[],
    readonly sampling: SamplingSpec | null,
  ) {
    this.pending = tokens;
    this.finished = new Promise((resolve) => (this.settle = resolve));
  }

  stop(): void {
    this.stopped = true;
  }

  /** Queues a token; the consumer sees it after `notify`. */
  deliver(token: GeneratedToken): void {
    this.queue.push(token);
  }

  /** No more tokens: the sequence is idle. The consumer sees the end after `notify` (or at once if it is not waiting). */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.sampler?.dispose();
    this.sampler = null;
    this.settle();
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.error = error ?? new Error('generation failed');
    this.end();
  }

  /** Wakes the consumer if it waits for a token. */
  notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GeneratedToken> {
    while (true) {
      if (this.head < this.queue.length) {
        const item = this.queue[this.head];
        this.queue[this.head++] = undefined as unknown as GeneratedToken;
        yield item;
        continue;
      }
      if (this.done) {
        if (this.error !== null) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** node-llama-cpp's flat [token, probability, token, probability, ...] list as a map, in its order. */
function candidateMap(flat: readonly number[]): Map<Token, number> {
  const map = new Map<Token, number>();
  for (let index = 0; index + 1 < flat.length; index += 2) map.set(flat[index] as Token, flat[index + 1]);
  return map;
}

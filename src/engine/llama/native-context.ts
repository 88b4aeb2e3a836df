import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaContext, LlamaContextSequence, Token } from 'node-llama-cpp';

/**
 * Tokenmill's two hooks into node-llama-cpp 3.21.1's private native context (`LlamaContext._ctx`); the library is
 * pinned to exactly that version, and `attach` checks the private shape and refuses to start if it ever differs.
 * See docs/decisions/0002-thread-split.md and 0007-truncate-without-the-context-lock.md.
 *
 * 1. Thread split: `threads` for small decode steps, `batchThreads` for big batches (llama-server's -t/-tb).
 * 2. Truncating a sequence between decodes. Truncating the tail of an idle sequence only needs llama.cpp's KV cache
 *    to be left alone while a decode runs, so `truncate` updates the sequence's token list at once and removes the
 *    KV cells right away when no decode is running, else just before the next decode starts (node-llama-cpp's own
 *    erase waited for its context lock, held for as long as any sequence generated; Tokenmill's decode loop,
 *    decode-loop.ts, does not use that lock at all).
 * 3. Copying a computed prefix from one sequence to another (decision 0011). llama.cpp's seq_cp is not exposed, but
 *    saving a sequence's state to a file and loading it into another is; both run between decodes (a decode waits
 *    for a copy in progress and a copy for the decode in progress), never under node-llama-cpp's context lock.
 */

interface NativeContext {
  initBatch(size: number): void;
  decodeBatch(): Promise<void>;
  setThreads(threads: number): void;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
  getSequenceKvCacheMaxPosition(sequenceId: number): number;
  saveSequenceStateToFile(filePath: string, sequenceId: number, tokens: Uint32Array): Promise<number>;
  loadSequenceStateFromFile(filePath: string, sequenceId: number, maxContextSize: number): Promise<Uint32Array>;
}

/** llama.cpp threads per decode step: `threads`, or `batchThreads` for batches of `batchMinTokens` tokens or more. */
export interface ThreadSplit {
  threads: number;
  batchThreads: number;
  batchMinTokens: number;
  /** The same for a step that only evaluates prompts (no generation waits on it for its next token). */
  promptMinTokens: number;
}

let copyFileCounter = 0;

/** The private fields of LlamaContextSequence that Tokenmill reads and maintains (as `_eraseContextTokenRanges` does). */
export interface SequenceInternals {
  _sequenceId: number;
  _contextTokens: Token[];
  _nextTokenIndex: number;
  _loadedTokenPredictions: unknown[];
  _tokenPredictor?: unknown;
}

export class NativeContextHooks {
  private decoding = false;
  /** Settles when the decode in progress ends; null when none runs. */
  private decodeDone: Promise<void> | null = null;
  /** Settles when every queued prefix copy has ended; null when none is queued. */
  private copiesDone: Promise<void> | null = null;
  private stateWork = false;
  /** The threads planThreads chose for the next decode; null: by the batch's size alone. */
  private plannedThreads: number | null = null;
  private readonly pendingRemovals: Array<() => void> = [];

  /**
   * @param maxStateTokens the most tokens a sequence holds (its context size): a state file's token list is read into
   *   a buffer this large.
   */
  private constructor(
    private readonly native: NativeContext,
    private readonly maxStateTokens: number,
    private readonly split: ThreadSplit,
  ) {}

  /** Installs the hooks on a context. Throws when node-llama-cpp's private shape is not the expected one. */
  static attach(context: LlamaContext, threads: ThreadSplit): NativeContextHooks {
    const native = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx;
    const methods = [
      'initBatch',
      'decodeBatch',
      'setThreads',
      'removeTokenCellsFromSequence',
      'getSequenceKvCacheMaxPosition',
      'saveSequenceStateToFile',
      'loadSequenceStateFromFile',
    ] as const;
    if (!native || methods.some((method) => typeof native[method] !== 'function')) {
      throw new Error('This node-llama-cpp build does not have the expected native context; Tokenmill needs node-llama-cpp 3.21.1.');
    }
    const hooks = new NativeContextHooks(native as NativeContext, context.contextSize, threads);
    hooks.wrap(threads);
    return hooks;
  }

  /**
   * Drops the sequence's tokens from `start` on. The sequence must be idle (no evaluation of its own in flight), as a
   * slot is between requests. Models whose KV cache cannot drop a tail (recurrent, hybrid, sliding-window: llama.cpp
   * would need checkpoints) drop the whole state instead: no prefix reuse for them, but a correct one. Returns how
   * many tokens the sequence keeps.
   */
  truncate(sequence: LlamaContextSequence, from: number): number {
    const internals = sequence as unknown as SequenceInternals;
    const end = internals._nextTokenIndex;
    if (from >= end) return end;
    const start = this.canCopy(sequence) ? from : 0;
    internals._contextTokens.splice(start);
    internals._nextTokenIndex = start;
    const sequenceId = internals._sequenceId;
    const remove = () => {
      if (!this.native.removeTokenCellsFromSequence(sequenceId, start, end)) {
        throw new Error(`llama.cpp refused to remove KV cells ${start}..${end} of sequence ${sequenceId}`);
      }
    };
    if (this.decoding || this.stateWork) this.pendingRemovals.push(remove);
    else remove();
    return start;
  }

  /** Whether `copyPrefix` works for this sequence's model (KV caches that can drop a tail; no token predictor). */
  canCopy(sequence: LlamaContextSequence): boolean {
    const internals = sequence as unknown as SequenceInternals;
    return !sequence.needsCheckpoints && internals._tokenPredictor === undefined && internals._loadedTokenPredictions.length === 0;
  }

  /**
   * Makes `target` (idle) hold the first tokens of `prefix` as computed by `source` (idle or busy): up to `length`
   * tokens, fewer when the source no longer holds them when the copy runs. Returns how many tokens were copied (0:
   * none, `target` unchanged). Both sequences must pass `canCopy`.
   */
  copyPrefix(source: LlamaContextSequence, target: LlamaContextSequence, prefix: readonly Token[], length: number): Promise<number> {
    return this.exclusive(async () => {
      const file = join(tmpdir(), `tokenmill-kv-${process.pid}-${copyFileCounter++}.bin`);
      try {
        const saved = await this.saveNow(source, file, prefix.slice(0, length));
        if (saved.length <= (target as unknown as SequenceInternals)._nextTokenIndex) return 0;
        return await this.loadNow(target, file, saved, prefix);
      } finally {
        await unlink(file).catch(() => {});
      }
    });
  }

  /**
   * Saves the longest prefix of `prefix` that `sequence` holds to `file`; resolves with the tokens saved (none: no
   * file was written).
   */
  saveState(sequence: LlamaContextSequence, file: string, prefix: readonly Token[]): Promise<Token[]> {
    return this.exclusive(() => this.saveNow(sequence, file, prefix));
  }

  /**
   * Loads a state saved by `saveState` (its `saved` tokens) into the idle `target`, keeping what it shares with
   * `prefix`. Returns how many tokens `target` then holds.
   */
  loadState(target: LlamaContextSequence, file: string, saved: readonly Token[], prefix: readonly Token[]): Promise<number> {
    return this.exclusive(() => this.loadNow(target, file, saved, prefix));
  }

  private async saveNow(sequence: LlamaContextSequence, file: string, prefix: readonly Token[]): Promise<Token[]> {
    const from = sequence as unknown as SequenceInternals;
    // The token list trails the KV cache (tokens are appended after their decode), so it is a safe bound.
    const limit = Math.min(prefix.length, from._contextTokens.length, this.native.getSequenceKvCacheMaxPosition(from._sequenceId) + 1);
    let length = 0;
    while (length < limit && from._contextTokens[length] === prefix[length]) length++;
    if (length === 0) return [];
    const tokens = from._contextTokens.slice(0, length);
    // The state file holds the sequence's whole KV state; the token list written with it is the valid prefix.
    await this.native.saveSequenceStateToFile(file, from._sequenceId, Uint32Array.from(from._contextTokens));
    return tokens;
  }

  private async loadNow(target: LlamaContextSequence, file: string, saved: readonly Token[], prefix: readonly Token[]): Promise<number> {
    const to = target as unknown as SequenceInternals;
    let length = 0;
    while (length < saved.length && length < prefix.length && saved[length] === prefix[length]) length++;
    if (length === 0) return to._nextTokenIndex;
    this.native.removeTokenCellsFromSequence(to._sequenceId, 0, -1);
    to._contextTokens.splice(0);
    to._nextTokenIndex = 0;
    const loaded = await this.native.loadSequenceStateFromFile(file, to._sequenceId, this.maxStateTokens);
    if (loaded.length < length || !this.native.removeTokenCellsFromSequence(to._sequenceId, length, -1)) {
      this.native.removeTokenCellsFromSequence(to._sequenceId, 0, -1);
      throw new Error(`loading a prefix state into sequence ${to._sequenceId} failed`);
    }
    to._contextTokens.push(...prefix.slice(0, length));
    to._nextTokenIndex = length;
    return length;
  }

  /**
   * Runs `work` between decodes: a decode in progress is waited for, and decodes wait for it (as do other such works);
   * truncations meanwhile are deferred, since `work` reads or writes the KV cache from llama.cpp's side.
   */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      while (this.decodeDone !== null) await this.decodeDone;
      this.stateWork = true;
      try {
        return await work();
      } finally {
        this.stateWork = false;
        for (const remove of this.pendingRemovals.splice(0)) remove();
      }
    };
    const result = (this.copiesDone ?? Promise.resolve()).then(run);
    const settled = result.then(
      () => {},
      () => {},
    );
    this.copiesDone = settled;
    void settled.then(() => {
      if (this.copiesDone === settled) this.copiesDone = null;
    });
    return result;
  }

  /** The llama.cpp threads a batch of `tokens` tokens runs on; `generating`: whether it holds a generation's next token. */
  threadsFor(tokens: number, generating = true): number {
    return tokens >= (generating ? this.split.batchMinTokens : this.split.promptMinTokens) ? this.split.batchThreads : this.split.threads;
  }

  /** Decides the threads of the next decode (the loop calls it once per step, before decodeBatch) and returns them. */
  planThreads(tokens: number, generating: boolean): number {
    this.plannedThreads = this.threadsFor(tokens, generating);
    return this.plannedThreads;
  }

  private wrap({ threads, batchThreads }: ThreadSplit): void {
    const native = this.native;
    const initBatch = native.initBatch.bind(native);
    const decodeBatch = native.decodeBatch.bind(native);
    const setThreads = native.setThreads.bind(native);
    let batchSize = 0;
    // The native methods live on the addon's prototype as read-only properties: shadow them on the instance.
    Object.defineProperty(native, 'initBatch', {
      value: (size: number) => {
        batchSize = size;
        initBatch(size);
      },
    });
    Object.defineProperty(native, 'decodeBatch', {
      value: async () => {
        while (this.copiesDone !== null) await this.copiesDone;
        for (const remove of this.pendingRemovals.splice(0)) remove();
        const stepThreads = this.plannedThreads ?? this.threadsFor(batchSize);
        this.plannedThreads = null;
        if (batchThreads !== threads) setThreads(stepThreads);
        this.decoding = true;
        const decode = decodeBatch();
        this.decodeDone = decode.then(
          () => {},
          () => {},
        );
        try {
          return await decode;
        } finally {
          this.decoding = false;
          this.decodeDone = null;
          for (const remove of this.pendingRemovals.splice(0)) remove();
        }
      },
    });
  }
}

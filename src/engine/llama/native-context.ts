import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaContext, LlamaContextSequence, Token } from 'node-llama-cpp';

/**
 * Tokenmill's two hooks into node-llama-cpp 3.21.1's private native context (`LlamaContext._ctx`); the library is
 * pinned to exactly that version, and `attach` checks the private shape and refuses to start if it ever differs.
 * See docs/decisions/0002-thread-split.md and 0007-truncate-without-the-context-lock.md.
 *
 * 1. Thread split: `threads` for one-token decode steps, `batchThreads` for bigger batches (llama-server's -t/-tb).
 * 2. Truncating a sequence without the context lock. node-llama-cpp's `eraseContextTokenRanges` waits for the context
 *    lock, which its batch loop holds for as long as any sequence has a decode queued: under load a new request
 *    waited until every other stream finished (seconds of TTFT). Truncating the tail of an idle sequence only needs
 *    llama.cpp's KV cache to be left alone while a decode runs, so `truncate` updates the sequence's token list at
 *    once and removes the KV cells right away when no decode is running, else just before the next decode starts.
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

let copyFileCounter = 0;

/** The private fields of LlamaContextSequence that `truncate` maintains as `_eraseContextTokenRanges` does. */
interface SequenceInternals {
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
  private copying = false;
  private readonly pendingRemovals: Array<() => void> = [];

  private constructor(private readonly native: NativeContext) {}

  /** Installs the hooks on a context. Throws when node-llama-cpp's private shape is not the expected one. */
  static attach(context: LlamaContext, threads: number, batchThreads: number): NativeContextHooks {
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
    const hooks = new NativeContextHooks(native as NativeContext);
    hooks.wrap(threads, batchThreads);
    return hooks;
  }

  /**
   * Drops the sequence's tokens from `start` on. The sequence must be idle (no evaluation of its own in flight), as a
   * slot is between requests. Falls back to node-llama-cpp's own (locking) erase for models whose KV cache cannot
   * drop a tail cheaply (recurrent, hybrid, sliding-window) and for sequences with a token predictor.
   */
  async truncate(sequence: LlamaContextSequence, start: number): Promise<void> {
    const internals = sequence as unknown as SequenceInternals;
    const end = internals._nextTokenIndex;
    if (start >= end) return;
    if (sequence.needsCheckpoints || internals._tokenPredictor !== undefined || internals._loadedTokenPredictions.length > 0) {
      await sequence.eraseContextTokenRanges([{ start, end }]);
      return;
    }
    internals._contextTokens.splice(start);
    internals._nextTokenIndex = start;
    const sequenceId = internals._sequenceId;
    const remove = () => {
      if (!this.native.removeTokenCellsFromSequence(sequenceId, start, end)) {
        throw new Error(`llama.cpp refused to remove KV cells ${start}..${end} of sequence ${sequenceId}`);
      }
    };
    if (this.decoding || this.copying) this.pendingRemovals.push(remove);
    else remove();
  }

  /** Whether `copyPrefix` works for this sequence's model (KV caches that can drop a tail; no token predictor). */
  canCopy(sequence: LlamaContextSequence): boolean {
    const internals = sequence as unknown as SequenceInternals;
    return !sequence.needsCheckpoints && internals._tokenPredictor === undefined && internals._loadedTokenPredictions.length === 0;
  }

  /**
   * Makes `target` (idle) hold the first tokens of `prefix` as computed by `source` (idle or busy): up to `length`
   * tokens, fewer when the source no longer holds them when the copy runs. Returns how many tokens `target` holds.
   * Both sequences must pass `canCopy`.
   */
  async copyPrefix(source: LlamaContextSequence, target: LlamaContextSequence, prefix: readonly Token[], length: number): Promise<number> {
    const from = source as unknown as SequenceInternals;
    const to = target as unknown as SequenceInternals;
    const run = async (): Promise<number> => {
      while (this.decodeDone !== null) await this.decodeDone;
      // The source's token list trails its KV cache (tokens are appended after their decode), so it is a safe bound.
      let copied = 0;
      const limit = Math.min(length, prefix.length, from._contextTokens.length, this.native.getSequenceKvCacheMaxPosition(from._sequenceId) + 1);
      while (copied < limit && from._contextTokens[copied] === prefix[copied]) copied++;
      if (copied <= to._nextTokenIndex) return to._nextTokenIndex;
      this.copying = true;
      const file = join(tmpdir(), `tokenmill-kv-${process.pid}-${copyFileCounter++}.bin`);
      try {
        const savedTokens = Uint32Array.from(from._contextTokens);
        await this.native.saveSequenceStateToFile(file, from._sequenceId, savedTokens);
        this.native.removeTokenCellsFromSequence(to._sequenceId, 0, -1);
        to._contextTokens.splice(0);
        to._nextTokenIndex = 0;
        await this.native.loadSequenceStateFromFile(file, to._sequenceId, savedTokens.length);
        if (!this.native.removeTokenCellsFromSequence(to._sequenceId, copied, -1)) {
          throw new Error(`llama.cpp refused to remove KV cells ${copied}.. of sequence ${to._sequenceId}`);
        }
        to._contextTokens.push(...prefix.slice(0, copied));
        to._nextTokenIndex = copied;
        return copied;
      } finally {
        this.copying = false;
        for (const remove of this.pendingRemovals.splice(0)) remove();
        await unlink(file).catch(() => {});
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

  private wrap(threads: number, batchThreads: number): void {
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
        if (batchThreads !== threads) setThreads(batchSize > 1 ? batchThreads : threads);
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

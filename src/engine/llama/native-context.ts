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
 */

interface NativeContext {
  initBatch(size: number): void;
  decodeBatch(): Promise<void>;
  setThreads(threads: number): void;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
}

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
  private readonly pendingRemovals: Array<() => void> = [];

  private constructor(private readonly native: NativeContext) {}

  /** Installs the hooks on a context. Throws when node-llama-cpp's private shape is not the expected one. */
  static attach(context: LlamaContext, threads: number, batchThreads: number): NativeContextHooks {
    const native = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx;
    const methods = ['initBatch', 'decodeBatch', 'setThreads', 'removeTokenCellsFromSequence'] as const;
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
    if (this.decoding) this.pendingRemovals.push(remove);
    else remove();
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
        for (const remove of this.pendingRemovals.splice(0)) remove();
        if (batchThreads !== threads) setThreads(batchSize > 1 ? batchThreads : threads);
        this.decoding = true;
        try {
          return await decodeBatch();
        } finally {
          this.decoding = false;
          for (const remove of this.pendingRemovals.splice(0)) remove();
        }
      },
    });
  }
}

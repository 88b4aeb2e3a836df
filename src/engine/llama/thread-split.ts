import type { LlamaContext } from 'node-llama-cpp';

/** The part of node-llama-cpp's native context object (private `_ctx`) that the thread split wraps. */
interface NativeContext {
  initBatch(size: number): void;
  decodeBatch(): Promise<void>;
  setThreads(threads: number): void;
}

/**
 * Uses `threads` for decode steps of one token and `batchThreads` for bigger batches (prompts, several sequences),
 * as llama-server's `-t` and `-tb` do. node-llama-cpp 3.21.1 sets llama.cpp's n_threads and n_threads_batch to one
 * value, so this wraps its private native context: it records each batch's size and sets the thread count just
 * before the decode. node-llama-cpp is pinned to exactly 3.21.1; if the private shape ever differs, this does
 * nothing and says so. See docs/decisions/0002-thread-split.md.
 * @returns whether the split is active.
 */
export function applyThreadSplit(context: LlamaContext, threads: number, batchThreads: number): boolean {
  if (batchThreads === threads) return true;
  const native = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx;
  if (!native || typeof native.initBatch !== 'function' || typeof native.decodeBatch !== 'function' || typeof native.setThreads !== 'function') {
    return false;
  }
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
    value: () => {
      setThreads(batchSize > 1 ? batchThreads : threads);
      return decodeBatch();
    },
  });
  return true;
}

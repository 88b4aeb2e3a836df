import { Worker } from 'node:worker_threads';
import type { SettleReply, SettleRequest } from './settlement-thread.js';
import type { SettlementItem } from './sqlite-settlement.js';

/** How long `close` waits for the thread to finish its last group and close the database, ms. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * The main thread's side of settlement-thread.ts: sends a group of records, resolves with per item null or the
 * error it threw. `start` starts the thread ahead of the first group (it takes tens of ms to load); it holds the
 * process open only while a group is out.
 */
export class SettlementWorker {
  /** The write lock between this thread and the settlement thread: 0 free, 1 taken (Atomics on shared memory). */
  readonly #writeLock = new Int32Array(new SharedArrayBuffer(4));
  #worker: Worker | null = null;
  #nextBatch = 0;
  readonly #waiting = new Map<number, { resolve: (results: unknown[]) => void; reject: (error: unknown) => void }>();

  constructor(
    /** The SQLite database file. */
    private readonly path: string,
    private readonly busyTimeoutMs: number,
  ) {}

  /** Commits `items` in one transaction on the thread. Rejects when the whole transaction failed. */
  settle(items: SettlementItem[]): Promise<unknown[]> {
    const worker = this.start();
    const batch = this.#nextBatch++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(batch, { resolve, reject });
      worker.ref();
      worker.postMessage({ batch, items } satisfies SettleRequest);
    });
  }

  /**
   * Takes the write lock for a synchronous write on this thread, unless the settlement thread holds it (false). The
   * settlement thread takes it around each group's transaction, blocking until it is free: neither thread ever sleeps
   * in SQLite's busy handler for the other, and a group waiting for a core does not hold this thread back.
   */
  tryLock(): boolean {
    return Atomics.compareExchange(this.#writeLock, 0, 0, 1) === 0;
  }

  unlock(): void {
    Atomics.store(this.#writeLock, 0, 0);
    Atomics.notify(this.#writeLock, 0);
  }

  /** Lets the thread close its connection and end (call once no group is out). */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    await worker.terminate();
  }

  start(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(new URL('./settlement-thread.js', import.meta.url), {
      workerData: { path: this.path, busyTimeoutMs: this.busyTimeoutMs, writeLock: this.#writeLock },
    });
    worker.unref();
    worker.on('message', (reply: SettleReply) => {
      const waiting = this.#waiting.get(reply.batch);
      this.#waiting.delete(reply.batch);
      if (this.#waiting.size === 0) worker.unref();
      if (waiting === undefined) return;
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.results.map((message) => (message === null ? null : new Error(message))));
    });
    const fail = (error: unknown) => {
      if (this.#worker === worker) this.#worker = null;
      // A thread that ended inside a group no longer holds anything.
      this.unlock();
      for (const waiting of this.#waiting.values()) waiting.reject(error);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the settlement thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }
}

import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { prepareSettlement, type SettlementItem } from './sqlite-settlement.js';

/** A group of settlements to commit (main thread -> this thread). */
export interface SettleRequest {
  batch: number;
  items: SettlementItem[];
}

/** What became of them: per item null or the error message, or the error of the whole transaction. */
export type SettleReply = { batch: number; results: Array<string | null> } | { batch: number; error: string };

/**
 * The thread that commits SQLite settlements (decision 0019): group commits ran on the main thread, 0.1-0.4 ms each
 * on the 2-vCPU VM, inside whichever request was being served when the timer fired. Its own connection to the same
 * database, with the store's settings. SqliteHotPath sends one group at a time; a shared lock (SettlementWorker.tryLock)
 * keeps the group's transaction and the main thread's reservations apart, so neither sleeps in SQLite's busy handler.
 */
const { path, busyTimeoutMs, writeLock } = workerData as { path: string; busyTimeoutMs: number; writeLock: Int32Array };
try {
  // Linux applies a priority to the calling thread alone. Woken by the main thread's message at normal priority, this
  // thread took the main thread's core from it for its whole commit (postMessage cost 220-250 us of the main
  // thread's time); at the lowest priority it waits for a free core instead.
  setPriority(19);
} catch {
  // Not permitted here: the thread runs at normal priority.
}
const database = new BetterSqlite3(path);
database.pragma('synchronous = NORMAL');
database.pragma(`busy_timeout = ${busyTimeoutMs}`);
database.pragma('foreign_keys = ON');
database.pragma('wal_autocheckpoint = 0');
database.pragma('temp_store = MEMORY');
const settleMany = prepareSettlement(database);

parentPort!.on('message', (request: SettleRequest | 'close') => {
  if (request === 'close') {
    database.close();
    parentPort!.close();
    return;
  }
  let reply: SettleReply;
  // The main thread's write lock (SettlementWorker.tryLock): its reservations are short and synchronous.
  while (Atomics.compareExchange(writeLock, 0, 0, 1) !== 0) Atomics.wait(writeLock, 0, 1, 5);
  try {
    const results = settleMany(request.items);
    reply = { batch: request.batch, results: results.map((error) => (error === null ? null : errorMessage(error))) };
  } catch (error) {
    reply = { batch: request.batch, error: errorMessage(error) };
  } finally {
    Atomics.store(writeLock, 0, 0);
  }
  parentPort!.postMessage(reply);
});

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

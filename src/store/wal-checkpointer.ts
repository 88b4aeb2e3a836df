import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

/**
 * A worker thread that checkpoints a SQLite database's write-ahead log. SQLite's automatic checkpoint runs inside the
 * commit that crosses 1,000 WAL pages, on the thread that commits, and fsyncs: every hundred or so requests one waited
 * milliseconds for it. The store turns the automatic checkpoint off and this thread runs a PASSIVE one every
 * `intervalMs` (it never blocks writers; what it cannot copy now, the next one copies).
 */
const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const database = new BetterSqlite3(path);
database.pragma('busy_timeout = 0');
const checkpoint = () => {
  try {
    database.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or closing: the next round tries again.
  }
};
const timer = setInterval(checkpoint, intervalMs);
parentPort!.once('message', () => {
  clearInterval(timer);
  checkpoint();
  database.close();
  parentPort!.close();
});

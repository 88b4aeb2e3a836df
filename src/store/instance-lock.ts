import BetterSqlite3 from 'better-sqlite3';

/** Another process serves the database (the message says what to do). */
export class InstanceLockedError extends Error {}

/** A held instance lock; `release` lets another process take it (so does this process's exit, however it ends). */
export interface InstanceLock {
  release(): void;
}

/**
 * Makes this process the only one serving a SQLite database: an EXCLUSIVE transaction kept open on a lock file of its
 * own (`path`, beside the database). SQLite takes it with an fcntl lock, which the kernel drops when the process ends,
 * SIGKILL included, so a crashed server never leaves a stale lock; a second process (or a second lock in this one)
 * fails at once. Holds of in-flight requests live in the serving process's memory (decision 0021), so two servers on
 * one SQLite file could each spend the same balance: several instances need PostgreSQL.
 */
export function lockInstance(path: string): InstanceLock {
  const database = new BetterSqlite3(path, { timeout: 0 });
  try {
    database.pragma('locking_mode = EXCLUSIVE');
    database.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    database.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new InstanceLockedError(
        `Another Tokenmill process serves the SQLite database beside ${path} (it holds this lock file). Stop it, give ` +
          'this one another data directory, or use PostgreSQL (DATABASE_URL) to run several instances on one database.',
      );
    }
    throw error;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      database.close();
    },
  };
}

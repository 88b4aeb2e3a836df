import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import { ImmediateSqliteDialect } from './immediate-sqlite-dialect.js';
import { lockInstance } from './instance-lock.js';
import { KyselyStore } from './kysely-store.js';
import { PostgresHotPath } from './postgres-hot-path.js';
import { SqliteHotPath } from './sqlite-hot-path.js';
import { postgresDialect, sqliteDialect } from './sql-dialect.js';
import type { Store } from './store.js';
import type { Tables } from './tables.js';

/** How long a SQLite write waits for another process's write lock before failing with SQLITE_BUSY, ms. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;
/** How often the worker thread checkpoints SQLite's write-ahead log, ms. */
const WAL_CHECKPOINT_INTERVAL_MS = 1000;

/** Starts the WAL checkpointer thread; `stop` runs a last checkpoint and waits for the thread (2 s at most). */
function startCheckpointer(path: string): { stop: () => Promise<void> } {
  const worker = new Worker(new URL('./wal-checkpointer.js', import.meta.url), { workerData: { path, intervalMs: WAL_CHECKPOINT_INTERVAL_MS } });
  worker.unref();
  // A failing checkpointer only lets the WAL grow; SQLite checkpoints when the last connection closes.
  worker.on('error', () => {});
  return {
    stop: async () => {
      // Referenced again, so that the process waits for the last checkpoint instead of exiting under it.
      worker.ref();
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('stop');
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2000))]);
      await worker.terminate();
    },
  };
}

/** PostgreSQL connections per process. */
const POSTGRES_POOL_SIZE = 10;

/**
 * Opens the store: PostgreSQL when `databaseUrl` is set (postgres:// or postgresql://; libpq-style query parameters
 * such as `?options=-c%20search_path%3Dmy_schema` pass through to pg), else the SQLite file
 * `<dataDir>/tokenmill.db` (the directory is created). Does not migrate: call `store.migrate()`.
 *
 * `exclusive` (SQLite; the server sets it): this process becomes the database's only user until the store closes
 * (`<dataDir>/tokenmill.lock`, see instance-lock.ts; throws when another process holds it), and keeps the holds of
 * interactive requests in memory instead of writing them (decision 0021). Without it (tools, migrations), holds are
 * rows, as several processes on one file need.
 */
export async function openStore(options: { databaseUrl: string | null; dataDir: string; exclusive?: boolean }): Promise<Store> {
  if (options.databaseUrl !== null) return openPostgres(options.databaseUrl);
  await mkdir(options.dataDir, { recursive: true });
  const exclusive = options.exclusive === true;
  const lock = exclusive ? lockInstance(join(options.dataDir, 'tokenmill.lock')) : null;
  let database: BetterSqlite3.Database;
  try {
    database = new BetterSqlite3(join(options.dataDir, 'tokenmill.db'));
  } catch (error) {
    lock?.release();
    throw error;
  }
  try {
    database.pragma('journal_mode = WAL');
    // In WAL mode NORMAL never corrupts the database; a power loss (not a process crash) may lose the last commits.
    // FULL would fsync on every reservation and settlement: about a millisecond per request on this disk.
    database.pragma('synchronous = NORMAL');
    database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    database.pragma('foreign_keys = ON');
    // Checkpoints run on a worker thread (wal-checkpointer.ts), not inside a request's commit.
    database.pragma('wal_autocheckpoint = 0');
    // Savepoints (each settlement of a group commit is one, decision 0017) keep their undo pages in a statement journal:
    // on disk that is a temporary file created, written and deleted by every group commit (a third of its writes).
    database.pragma('temp_store = MEMORY');
  } catch (error) {
    database.close();
    lock?.release();
    throw error;
  }
  const kysely = new Kysely<Tables>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(database) }) });
  const checkpointer = startCheckpointer(join(options.dataDir, 'tokenmill.db'));
  // The hot path prepares its statements against the tables, so it is built lazily, after migrations.
  return new KyselyStore(kysely, sqliteDialect, () => new SqliteHotPath(database, kysely, SQLITE_BUSY_TIMEOUT_MS, exclusive), async () => {
    await checkpointer.stop();
    lock?.release();
  });
}

/** Statements kept per SQL text; Kysely's queries have a fixed set of shapes, so this stays small. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver prepares every query anew, which costs more than running it (tens of microseconds per
 * statement on the request path). Statements are reusable and Kysely runs one query at a time on this one
 * connection, so prepared statements are cached by their SQL text.
 */
function cachingStatements(database: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(sql, statement);
      }
      return statement as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
  };
}

function openPostgres(databaseUrl: string): Store {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw new Error(`database URL must start with postgres:// or postgresql://, got ${scheme ?? 'no scheme'}`);
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: POSTGRES_POOL_SIZE });
  // An idle connection that the server drops emits 'error' on the pool; unhandled, that would kill the process.
  // The pool discards that connection and opens a new one on the next query, whose own errors reach the caller.
  pool.on('error', () => {});
  const kysely = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return new KyselyStore(kysely, postgresDialect, () => new PostgresHotPath(kysely));
}

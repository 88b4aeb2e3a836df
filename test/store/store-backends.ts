import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { AccountStatus } from '../../src/store/store.js';

export interface StoreOptions {
  databaseUrl: string | null;
  dataDir: string;
  /** SQLite: the serving process's mode (an instance lock, holds of interactive requests in memory). */
  exclusive?: boolean;
}

/** A database the contract suite can run on: each `prepare()` names a fresh, empty one; `cleanup()` drops them all. */
export interface StoreBackend {
  name: string;
  prepare(): Promise<StoreOptions>;
  cleanup(): Promise<void>;
  /** Runs `work` (which migrates) so that no other test run drops its schema meanwhile (see postgresBackend). */
  whileMigrating<T>(work: () => Promise<T>): Promise<T>;
  /** The store has no method for this (accounts are suspended by admins, in a later issue): plain SQL, test-only. */
  setAccountStatus(options: StoreOptions, accountId: string, status: AccountStatus): Promise<void>;
}

/**
 * SQLite as tools open it (holds are reservation rows), or with `exclusive` as the server does (one process, holds of
 * interactive requests in memory: decision 0021).
 */
export function sqliteBackend(options: { exclusive?: boolean } = {}): StoreBackend {
  const directories: string[] = [];
  return {
    name: options.exclusive === true ? 'SQLite (the server: one process, holds in memory)' : 'SQLite',
    async prepare() {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'tokenmill-store-'));
      directories.push(dataDir);
      return { databaseUrl: null, dataDir, exclusive: options.exclusive === true };
    },
    async cleanup() {
      await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
    },
    whileMigrating: (work) => work(),
    async setAccountStatus(options, accountId, status) {
      const database = new BetterSqlite3(path.join(options.dataDir, 'tokenmill.db'), { timeout: 5000 });
      try {
        database.prepare('update accounts set status = ? where id = ?').run(status, accountId);
      } finally {
        database.close();
      }
    },
  };
}

/** The server to test on: TOKENMILL_TEST_DATABASE_URL, else a local one with trust auth. */
export const postgresTestUrl = process.env.TOKENMILL_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Why the PostgreSQL suite cannot run here, or null when it can. An unreachable server fails the suite (CI always
 * has one); only TOKENMILL_TEST_SKIP_POSTGRES=1 turns that into a skip, for machines without PostgreSQL.
 */
export async function postgresUnavailable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: postgresTestUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    if (process.env.TOKENMILL_TEST_SKIP_POSTGRES !== '1') throw error;
    return `no PostgreSQL at ${postgresTestUrl} (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    await client.end().catch(() => {});
  }
}

async function withClient<T>(connectionString: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Advisory lock key (any constant) that keeps test runs from dropping schemas while another run migrates. */
const SCHEMA_DROP_LOCK = 74_116_101_115_116;

/**
 * Each `prepare()` creates a schema `tm_test_<hex>` and points search_path at it, so runs never collide. One catch:
 * Kysely's Migrator lists the tables of every schema (`has_schema_privilege(name, ...)`), which fails with 3F000 if
 * another run drops its schema during the listing. So migrations hold a shared advisory lock and the drop an
 * exclusive one. Servers never drop schemas, so the store itself needs no such lock.
 */
export function postgresBackend(): StoreBackend {
  const schemas: string[] = [];
  return {
    name: 'PostgreSQL',
    async prepare() {
      const schema = `tm_test_${randomBytes(6).toString('hex')}`;
      await withClient(postgresTestUrl, (client) => client.query(`create schema ${schema}`));
      schemas.push(schema);
      const url = new URL(postgresTestUrl);
      url.searchParams.set('options', `-c search_path=${schema}`);
      return { databaseUrl: url.toString(), dataDir: path.join(tmpdir(), 'tokenmill-unused') };
    },
    async cleanup() {
      await withClient(postgresTestUrl, async (client) => {
        await client.query('select pg_advisory_lock($1)', [SCHEMA_DROP_LOCK]);
        for (const schema of schemas) await client.query(`drop schema if exists ${schema} cascade`);
        await client.query('select pg_advisory_unlock($1)', [SCHEMA_DROP_LOCK]);
      });
    },
    whileMigrating: (work) =>
      withClient(postgresTestUrl, async (client) => {
        await client.query('select pg_advisory_lock_shared($1)', [SCHEMA_DROP_LOCK]);
        try {
          return await work();
        } finally {
          await client.query('select pg_advisory_unlock_shared($1)', [SCHEMA_DROP_LOCK]);
        }
      }),
    async setAccountStatus(options, accountId, status) {
      if (options.databaseUrl === null) throw new Error('not a PostgreSQL store');
      await withClient(options.databaseUrl, (client) => client.query('update accounts set status = $1 where id = $2', [status, accountId]));
    },
  };
}

import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';

/**
 * Kysely's SQLite dialect, made safe for several processes on one database file:
 * - transactions are `BEGIN IMMEDIATE`: each takes the write lock when it starts (waiting up to busy_timeout)
 *   instead of at its first write, where a deferred transaction that has already read fails with SQLITE_BUSY if
 *   another process wrote in between;
 * - migrations run in one such transaction (Kysely's SQLite adapter runs them without one, and its migration lock is
 *   a no-op, so two processes migrating at once both apply 0001 and one fails). SQLite DDL is transactional; a
 *   future migration that must toggle `PRAGMA foreign_keys` (not allowed inside a transaction) needs another plan.
 * In one process Kysely already runs everything on one connection, one transaction at a time.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

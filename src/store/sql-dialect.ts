import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Tables } from './tables.js';

/** The few places where SQLite and PostgreSQL need different SQL. Everything else is one Kysely query. */
export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /** The UTC calendar day, `YYYY-MM-DD`, of a unix-seconds column. Has no bound parameters (safe in GROUP BY). */
  utcDay(column: string): RawBuilder<string>;
  /**
   * The schema to keep Kysely's migration tables in. On PostgreSQL this must be named: the Migrator otherwise looks
   * for its tables in every schema and would take another schema's (e.g. another test run's) as its own.
   */
  migrationTableSchema(db: Kysely<Tables>): Promise<string | undefined>;
}

export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  utcDay: (column) => sql<string>`date(${sql.ref(column)}, 'unixepoch')`,
  migrationTableSchema: async () => undefined,
};

export const postgresDialect: SqlDialect = {
  name: 'postgres',
  utcDay: (column) => sql<string>`to_char(to_timestamp(${sql.ref(column)}) at time zone 'UTC', 'YYYY-MM-DD')`,
  async migrationTableSchema(db) {
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const schema = rows[0]?.schema;
    if (!schema) throw new Error('PostgreSQL search_path names no existing schema: cannot migrate');
    return schema;
  },
};

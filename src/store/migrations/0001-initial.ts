import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The first schema: accounts, API keys, the ledger, usage records, reservations, settings. Written against
 * `Kysely<unknown>` so that it never changes when tables.ts does. Types are portable: TEXT, INTEGER and BIGINT
 * (SQLite gives BIGINT integer affinity). Money is micro-USD, times are unix seconds.
 */
export const initialMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('accounts')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull().check(sql`status in ('active', 'suspended')`))
      .addColumn('balance_micros', 'bigint', (column) => column.notNull().check(sql`balance_micros >= 0`))
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('account_id', 'text', (column) => column.notNull().references('accounts.id'))
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('prefix', 'text', (column) => column.notNull())
      .addColumn('secret_hash', 'text', (column) => column.notNull().unique())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('models', 'text')
      .addColumn('rpm', 'integer')
      .addColumn('tpm', 'integer')
      .addColumn('max_concurrency', 'integer')
      .addColumn('spend_limit_micros', 'bigint')
      .addColumn('spent_micros', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('api_keys_account_id').on('api_keys').column('account_id').execute();

    await db.schema
      .createTable('ledger_entries')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('account_id', 'text', (column) => column.notNull().references('accounts.id'))
      .addColumn('amount_micros', 'bigint', (column) => column.notNull())
      .addColumn('kind', 'text', (column) => column.notNull().check(sql`kind in ('credit', 'usage')`))
      .addColumn('request_id', 'text')
      .addColumn('note', 'text')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('ledger_entries_account_id_kind').on('ledger_entries').columns(['account_id', 'kind']).execute();

    await db.schema
      .createTable('usage_records')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('account_id', 'text', (column) => column.notNull().references('accounts.id'))
      .addColumn('key_id', 'text', (column) => column.references('api_keys.id'))
      .addColumn('model', 'text', (column) => column.notNull())
      .addColumn('endpoint', 'text', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('prompt_tokens', 'integer', (column) => column.notNull())
      .addColumn('cached_tokens', 'integer', (column) => column.notNull())
      .addColumn('completion_tokens', 'integer', (column) => column.notNull())
      .addColumn('cost_micros', 'bigint', (column) => column.notNull())
      .addColumn('latency_ms', 'integer', (column) => column.notNull())
      .addColumn('ttft_ms', 'integer')
      .addColumn('batch_id', 'text')
      .execute();
    await db.schema
      .createIndex('usage_records_account_id_created_at')
      .on('usage_records')
      .columns(['account_id', 'created_at', 'id'])
      .execute();
    // For the all-accounts views (admin usage list and summary).
    await db.schema.createIndex('usage_records_created_at').on('usage_records').columns(['created_at', 'id']).execute();

    await db.schema
      .createTable('reservations')
      .addColumn('request_id', 'text', (column) => column.primaryKey())
      .addColumn('account_id', 'text', (column) => column.notNull().references('accounts.id'))
      .addColumn('key_id', 'text', (column) => column.references('api_keys.id'))
      .addColumn('amount_micros', 'bigint', (column) => column.notNull().check(sql`amount_micros >= 0`))
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('reservations_created_at').on('reservations').column('created_at').execute();

    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (column) => column.primaryKey())
      .addColumn('value', 'text', (column) => column.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['settings', 'reservations', 'usage_records', 'ledger_entries', 'api_keys', 'accounts']) {
      await db.schema.dropTable(table).execute();
    }
  },
};

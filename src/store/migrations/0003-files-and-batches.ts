import { SqliteAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * Files (their content as a blob, so that every instance sharing the database reads them) and batches with one row
 * per input line. A line's status moves pending -> running (claimed by a worker, with a lease) -> succeeded | failed
 * | expired | cancelled; its `result` is the JSONL line of the output or error file, committed once.
 */
export const filesAndBatchesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const blob = db.getExecutor().adapter instanceof SqliteAdapter ? 'blob' : 'bytea';
    await db.schema
      .createTable('files')
      .addColumn('id', 'text', (column) => column.primaryKey())
      // '' when accounts are disabled (anonymous owner).
      .addColumn('account_id', 'text', (column) => column.notNull())
      .addColumn('purpose', 'text', (column) => column.notNull())
      .addColumn('filename', 'text', (column) => column.notNull())
      .addColumn('bytes', 'bigint', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('content', sql.raw(blob), (column) => column.notNull())
      .execute();
    await db.schema.createIndex('files_account_id_created_at').on('files').columns(['account_id', 'created_at', 'id']).execute();

    await db.schema
      .createTable('batches')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('account_id', 'text', (column) => column.notNull())
      .addColumn('key_id', 'text')
      .addColumn('endpoint', 'text', (column) => column.notNull())
      .addColumn('input_file_id', 'text', (column) => column.notNull())
      .addColumn('completion_window', 'text', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('metadata', 'text')
      .addColumn('errors', 'text')
      .addColumn('output_file_id', 'text')
      .addColumn('error_file_id', 'text')
      .addColumn('total', 'integer', (column) => column.notNull())
      .addColumn('completed', 'integer', (column) => column.notNull())
      .addColumn('failed', 'integer', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('in_progress_at', 'bigint')
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .addColumn('finalizing_at', 'bigint')
      .addColumn('completed_at', 'bigint')
      .addColumn('failed_at', 'bigint')
      .addColumn('expired_at', 'bigint')
      .addColumn('cancelling_at', 'bigint')
      .addColumn('cancelled_at', 'bigint')
      .execute();
    await db.schema.createIndex('batches_account_id_created_at').on('batches').columns(['account_id', 'created_at', 'id']).execute();
    await db.schema.createIndex('batches_status').on('batches').column('status').execute();

    await db.schema
      .createTable('batch_lines')
      .addColumn('batch_id', 'text', (column) => column.notNull().references('batches.id'))
      .addColumn('line_index', 'integer', (column) => column.notNull())
      .addColumn('custom_id', 'text', (column) => column.notNull())
      .addColumn('body', 'text', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('worker_id', 'text')
      .addColumn('attempt', 'integer', (column) => column.notNull())
      // Running: when the lease ends (ms since epoch); pending: not before (a retry's back-off).
      .addColumn('lease_until_ms', 'bigint')
      .addColumn('result', 'text')
      .addColumn('finished_at', 'bigint')
      .addPrimaryKeyConstraint('batch_lines_pkey', ['batch_id', 'line_index'])
      .execute();
    await db.schema.createIndex('batch_lines_status').on('batch_lines').columns(['status', 'batch_id', 'line_index']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['batch_lines', 'batches', 'files']) await db.schema.dropTable(table).execute();
  },
};

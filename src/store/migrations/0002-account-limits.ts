import type { Kysely, Migration } from 'kysely';

/** Per-account rate limits (null = unlimited), shared by every key of the account. */
export const accountLimitsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('accounts').addColumn('rpm', 'integer').execute();
    await db.schema.alterTable('accounts').addColumn('tpm', 'integer').execute();
    await db.schema.alterTable('accounts').addColumn('max_concurrency', 'integer').execute();
  },
};

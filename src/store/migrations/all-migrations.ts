import type { Migration } from 'kysely';
import { initialMigration } from './0001-initial.js';
import { accountLimitsMigration } from './0002-account-limits.js';
import { filesAndBatchesMigration } from './0003-files-and-batches.js';
import { postgresRequestFunctionsMigration } from './0004-postgres-request-functions.js';
import { usageCacheWritesMigration } from './0005-usage-cache-writes.js';
import { dropReservationsCreatedAtMigration } from './0006-drop-reservations-created-at.js';

/**
 * Every migration, by name; Kysely's Migrator applies them in name order and never reorders applied ones. Add a new
 * file with the next number; never edit one that has shipped.
 */
export const allMigrations: Readonly<Record<string, Migration>> = {
  '0001-initial': initialMigration,
  '0002-account-limits': accountLimitsMigration,
  '0003-files-and-batches': filesAndBatchesMigration,
  '0004-postgres-request-functions': postgresRequestFunctionsMigration,
  '0005-usage-cache-writes': usageCacheWritesMigration,
  '0006-drop-reservations-created-at': dropReservationsCreatedAtMigration,
};

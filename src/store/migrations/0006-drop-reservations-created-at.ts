import type { Kysely, Migration } from 'kysely';

/**
 * Every request inserts and deletes one reservation, and each index on the table is one more B-tree page written per
 * commit. `reservations_created_at` served only `releaseStale` at startup; the table holds only the holds of requests
 * in flight (a handful of rows), so scanning it there costs nothing (docs/decisions/0019).
 */
export const dropReservationsCreatedAtMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('reservations_created_at').execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('reservations_created_at').on('reservations').column('created_at').execute();
  },
};

import type { Kysely } from 'kysely';
import type { Tables } from '../tables.js';

/** Instance-wide key/value settings (e.g. a generated admin token, written once). */
export class SettingsRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  async get(key: string): Promise<string | null> {
    const row = await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value ?? null;
  }

  /** Insert-if-absent, then read: when two instances race, both get the value of whichever inserted first. */
  async setIfAbsent(key: string, value: string): Promise<string> {
    await this.db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((conflict) => conflict.column('key').doNothing())
      .execute();
    const stored = await this.get(key);
    if (stored === null) throw new Error(`setting ${key} vanished after insert`);
    return stored;
  }

  /** Upsert: replaces any value. */
  async set(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((conflict) => conflict.column('key').doUpdateSet({ value }))
      .execute();
  }
}

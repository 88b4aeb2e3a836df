import type { Kysely, Selectable } from 'kysely';
import type { Account, AccountStatus, ApiKey, NewApiKey } from '../store.js';
import { rowToAccount } from './accounts-repository.js';
import type { ApiKeysTable, Tables } from '../tables.js';
import { newId } from '../new-id.js';
import { assertSafeInteger, toSafeInteger, toSafeIntegerOrNull } from '../to-safe-integer.js';

export function rowToApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    prefix: row.prefix,
    createdAt: toSafeInteger(row.created_at),
    lastUsedAt: toSafeIntegerOrNull(row.last_used_at),
    expiresAt: toSafeIntegerOrNull(row.expires_at),
    revokedAt: toSafeIntegerOrNull(row.revoked_at),
    spentMicros: toSafeInteger(row.spent_micros),
    models: parseModels(row.models),
    rpm: row.rpm,
    tpm: row.tpm,
    maxConcurrency: row.max_concurrency,
    spendLimitMicros: toSafeIntegerOrNull(row.spend_limit_micros),
  };
}

/** A key row joined with its account's columns (prefixed `account_`), as the authentication path reads it. */
export type KeyWithAccountRow = Selectable<ApiKeysTable> & {
  account_name: string;
  account_status: AccountStatus;
  account_balance_micros: number | string;
  account_created_at: number | string;
  account_rpm: number | null;
  account_tpm: number | null;
  account_max_concurrency: number | null;
};

export function rowToKeyWithAccount(row: KeyWithAccountRow): { key: ApiKey; account: Account } {
  return {
    key: rowToApiKey(row),
    account: rowToAccount({
      id: row.account_id,
      name: row.account_name,
      status: row.account_status,
      balance_micros: row.account_balance_micros,
      created_at: row.account_created_at,
      rpm: row.account_rpm,
      tpm: row.account_tpm,
      max_concurrency: row.account_max_concurrency,
    }),
  };
}

/** `models` is stored as a JSON array of strings, or NULL for "all models". */
function parseModels(text: string | null): string[] | null {
  if (text === null) return null;
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((model): model is string => typeof model === 'string')) {
    throw new Error(`api_keys.models is not a JSON array of strings: ${text}`);
  }
  return parsed;
}

/** API keys. Only the sha256 of a secret is stored. Spend (`spent_micros`) moves in ReservationsRepository. */
export class KeysRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  async create(input: NewApiKey & { now: number }): Promise<ApiKey> {
    if (input.spendLimitMicros !== null) assertSafeInteger(input.spendLimitMicros, 'spendLimitMicros');
    const row = await this.db
      .insertInto('api_keys')
      .values({
        id: newId('key'),
        account_id: input.accountId,
        name: input.name,
        prefix: input.prefix,
        secret_hash: input.secretHash,
        created_at: input.now,
        last_used_at: null,
        expires_at: input.expiresAt,
        revoked_at: null,
        models: input.models === null ? null : JSON.stringify(input.models),
        rpm: input.rpm,
        tpm: input.tpm,
        max_concurrency: input.maxConcurrency,
        spend_limit_micros: input.spendLimitMicros,
        spent_micros: 0,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return rowToApiKey(row);
  }

  async get(id: string): Promise<ApiKey | null> {
    const row = await this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? rowToApiKey(row) : null;
  }

  /** Revoked and expired keys too: the caller decides what they mean. */
  /** The key with this hash and its account, in one query (the authentication path). */
  async findWithAccountByHash(secretHash: string): Promise<{ key: ApiKey; account: Account } | null> {
    const row = await this.db
      .selectFrom('api_keys')
      .innerJoin('accounts', 'accounts.id', 'api_keys.account_id')
      .selectAll('api_keys')
      .select([
        'accounts.name as account_name',
        'accounts.status as account_status',
        'accounts.balance_micros as account_balance_micros',
        'accounts.created_at as account_created_at',
        'accounts.rpm as account_rpm',
        'accounts.tpm as account_tpm',
        'accounts.max_concurrency as account_max_concurrency',
      ])
      .where('api_keys.secret_hash', '=', secretHash)
      .executeTakeFirst();
    if (!row) return null;
    return rowToKeyWithAccount(row);
  }

  async findByHash(secretHash: string): Promise<ApiKey | null> {
    const row = await this.db.selectFrom('api_keys').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
    return row ? rowToApiKey(row) : null;
  }

  async list(accountId: string): Promise<ApiKey[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(rowToApiKey);
  }

  /** Keeps the first revocation time when revoked twice. False when there is no such key. */
  async revoke(id: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('api_keys')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(now)).$castTo<number | null>() }))
      .where('id', '=', id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
  }
}

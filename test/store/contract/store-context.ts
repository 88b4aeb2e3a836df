import type { Account, ApiKey, NewApiKey, Store, UsageRecord } from '../../../src/store/store.js';
import type { StoreBackend, StoreOptions } from '../store-backends.js';
import { createHash, randomBytes } from 'node:crypto';

/** What each group of contract cases gets: the migrated store under test (valid inside tests) and its backend. */
export interface StoreContext {
  store(): Store;
  options(): StoreOptions;
  backend: StoreBackend;
}

/**
 * All cases share one database, so each makes its own accounts and keys. Times are unix seconds; cases that read
 * usage across all accounts use their own time window (see `usageWindow`). Reservations are made at RESERVE_NOW.
 */
export const RESERVE_NOW = 1_700_000_000;

export async function fundedAccount(store: Store, amountMicros: number): Promise<Account> {
  const account = await store.createAccount({ name: `account ${randomBytes(3).toString('hex')}`, now: RESERVE_NOW });
  if (amountMicros === 0) return account;
  const funded = await store.addCredits({ accountId: account.id, amountMicros, note: 'test funds', now: RESERVE_NOW });
  if (!funded) throw new Error('could not fund the test account');
  return funded;
}

export function newKeyInput(accountId: string, overrides: Partial<NewApiKey> = {}): NewApiKey & { now: number } {
  const secret = `tm-${randomBytes(16).toString('hex')}`;
  return {
    accountId,
    name: 'test key',
    prefix: secret.slice(0, 11),
    secretHash: createHash('sha256').update(secret).digest('hex'),
    expiresAt: null,
    models: null,
    rpm: null,
    tpm: null,
    maxConcurrency: null,
    spendLimitMicros: null,
    now: RESERVE_NOW,
    ...overrides,
  };
}

export async function newKey(store: Store, accountId: string, overrides: Partial<NewApiKey> = {}): Promise<ApiKey> {
  return store.createKey(newKeyInput(accountId, overrides));
}

export function requestId(): string {
  return `req_${randomBytes(8).toString('hex')}`;
}

export function usageRecord(fields: Pick<UsageRecord, 'id' | 'accountId'> & Partial<UsageRecord>): UsageRecord {
  return {
    createdAt: RESERVE_NOW,
    keyId: null,
    model: 'stories-260k',
    endpoint: '/v1/chat/completions',
    status: 'completed',
    promptTokens: 10,
    cachedTokens: 2,
    cacheWriteTokens: 3,
    completionTokens: 5,
    costMicros: 0,
    latencyMs: 120,
    ttftMs: 15,
    batchId: null,
    ...fields,
  };
}

/** balance == credits - usage - open reservations: the ledger invariant every money test ends with. */
export async function assertLedgerInvariant(store: Store, accountId: string, openReservationsMicros: number): Promise<void> {
  const account = await store.getAccount(accountId);
  const totals = await store.ledgerTotals(accountId);
  if (!account) throw new Error(`no account ${accountId}`);
  const expected = totals.creditsMicros - totals.usageMicros - openReservationsMicros;
  if (account.balanceMicros !== expected || account.balanceMicros < 0) {
    throw new Error(
      `ledger invariant broken for ${accountId}: balance ${account.balanceMicros}, credits ${totals.creditsMicros}, ` +
        `usage ${totals.usageMicros}, open ${openReservationsMicros}`,
    );
  }
}

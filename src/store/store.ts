import type { BatchStore, FileStore } from './batch-store.js';

/**
 * The store contract: accounts, API keys, the credit ledger, usage records and settings. One implementation on
 * Kysely serves SQLite (better-sqlite3, the default) and PostgreSQL (DATABASE_URL). Money is integer micro-USD
 * (JS numbers, always safe integers); times are unix seconds unless named `*Ms`.
 */

export type AccountStatus = 'active' | 'suspended';

/** Rate limits shared by every key of an account; null = unlimited. */
export interface AccountLimits {
  rpm: number | null;
  tpm: number | null;
  maxConcurrency: number | null;
}

export interface Account {
  id: string;
  name: string;
  status: AccountStatus;
  limits: AccountLimits;
  /** Spendable balance, micro-USD: credits minus settled usage minus open reservations. Never negative. */
  balanceMicros: number;
  /** Unix seconds. */
  createdAt: number;
}

export interface ApiKeyLimits {
  /** Model ids the key may use; null = all. */
  models: string[] | null;
  /** Requests per minute; null = unlimited. */
  rpm: number | null;
  /** Tokens per minute; null = unlimited. */
  tpm: number | null;
  maxConcurrency: number | null;
  /** Most the key may spend in total, micro-USD; null = no limit beyond the account balance. */
  spendLimitMicros: number | null;
}

export interface ApiKey extends ApiKeyLimits {
  id: string;
  accountId: string;
  name: string;
  /** The first characters of the secret (e.g. `tm-AbCd1234`), for display; never enough to use it. */
  prefix: string;
  /** Unix seconds. */
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
  /** Spent so far including open reservations, micro-USD. */
  spentMicros: number;
}

export interface NewApiKey extends ApiKeyLimits {
  accountId: string;
  name: string;
  prefix: string;
  /** sha256 hex of the secret; the secret itself is never stored. */
  secretHash: string;
  expiresAt: number | null;
}

export interface UsageRecord {
  /** The request id (the `x-request-id` header). */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  accountId: string;
  keyId: string | null;
  model: string;
  /** e.g. `/v1/chat/completions`. */
  endpoint: string;
  /** `completed`, `cancelled` (client went away), `failed`. */
  status: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Prompt tokens written to the prompt cache (billed at the cache-write price); a part of promptTokens. Absent: 0. */
  cacheWriteTokens?: number;
  costMicros: number;
  latencyMs: number;
  ttftMs: number | null;
  batchId: string | null;
}

export interface ReservationRequest {
  /** The request id; one reservation per request. */
  requestId: string;
  accountId: string;
  keyId: string | null;
  /** Worst-case cost, micro-USD. */
  amountMicros: number;
  /** Unix seconds. */
  now: number;
  /**
   * The hold must be a database row (a batch line's: its settlement commits with the line, decision 0015). Otherwise
   * a SQLite store that is its database's only user keeps it in memory (decision 0021).
   */
  durable?: boolean;
}

export type ReservationResult = 'reserved' | 'insufficient_balance' | 'key_spend_limit' | 'account_inactive';

export type UsageGroupBy = 'model' | 'key' | 'day';

export interface UsageSummaryRow {
  /** The model id, key id, or day (YYYY-MM-DD, UTC). */
  group: string;
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  costMicros: number;
}

/** Files and batches: see batch-store.ts. */
export interface Store extends FileStore, BatchStore {
  /** Applies pending migrations (idempotent; safe to run from several instances at once). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createAccount(input: { name: string; now: number; limits?: AccountLimits }): Promise<Account>;
  /** Replaces the account's limits; null when no such account exists. */
  setAccountLimits(id: string, limits: AccountLimits): Promise<Account | null>;
  getAccount(id: string): Promise<Account | null>;
  listAccounts(): Promise<Account[]>;
  /** Adds a ledger entry (positive or negative) and moves the balance, in one transaction. A debit that would make the balance negative is refused (returns null). */
  addCredits(input: { accountId: string; amountMicros: number; note: string | null; now: number }): Promise<Account | null>;

  createKey(input: NewApiKey & { now: number }): Promise<ApiKey>;
  getKey(id: string): Promise<ApiKey | null>;
  /** The key with this secret hash, revoked or not. */
  findKeyByHash(secretHash: string): Promise<ApiKey | null>;
  /** The same, with the key's account, in one round trip (the authentication path). */
  findKeyWithAccountByHash(secretHash: string): Promise<{ key: ApiKey; account: Account } | null>;
  listKeys(accountId: string): Promise<ApiKey[]>;
  /** Returns false when no such key exists. */
  revokeKey(id: string, now: number): Promise<boolean>;
  touchKey(id: string, now: number): Promise<void>;

  /**
   * Holds `amountMicros` of the account's balance (and of the key's spend limit) for a request. Atomic: however
   * many requests race, the balance never goes below zero and the key never exceeds its spend limit.
   */
  reserve(request: ReservationRequest): Promise<ReservationResult>;
  /**
   * Ends a reservation with its real cost: writes the usage record and its ledger entry, returns the unused part of
   * the hold to the balance and the key, and deletes the reservation, all in one transaction. Idempotent per
   * request id (a second settle of the same request does nothing). `record.costMicros` may not exceed the hold.
   */
  settle(record: UsageRecord): Promise<void>;
  /** Ends a reservation without usage (the request never reached the engine). */
  release(requestId: string): Promise<void>;
  /** Releases reservations created before `before` (unix seconds): holds left by a crashed process. */
  releaseStale(before: number): Promise<number>;

  usageSummary(query: { accountId: string | null; start: number; end: number; groupBy: UsageGroupBy }): Promise<UsageSummaryRow[]>;
  /** Newest first; `after` is a record id from a previous page. */
  listUsage(query: { accountId: string | null; limit: number; after: string | null }): Promise<{ records: UsageRecord[]; hasMore: boolean }>;
  /** Sum of the account's credit ledger entries and of its usage costs (for audits and tests). */
  ledgerTotals(accountId: string): Promise<{ creditsMicros: number; usageMicros: number }>;

  getSetting(key: string): Promise<string | null>;
  /** Sets the value only if the key has none; returns the value now stored. */
  setSettingIfAbsent(key: string, value: string): Promise<string>;
  /** Sets the value, replacing any. */
  setSetting(key: string, value: string): Promise<void>;
}

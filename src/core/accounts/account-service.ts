import type { Account, AccountLimits, ApiKey, Store, UsageGroupBy, UsageRecord, UsageSummaryRow } from '../../store/store.js';
import { usdToMicros } from '../billing/prices.js';
import { invalidRequest, TokenmillError } from '../errors.js';
import { displayPrefix, generateSecret, hashSecret } from '../keys/secrets.js';
import { KeyCache } from './key-cache.js';

export interface NewKeyRequest {
  name: string;
  models?: string[] | null;
  rpm?: number | null;
  tpm?: number | null;
  maxConcurrency?: number | null;
  spendLimitUsd?: number | null;
  /** Unix seconds. */
  expiresAt?: number | null;
}

function accountNotFound(id: string): TokenmillError {
  return new TokenmillError('not_found', 'account_not_found', `No account with id '${id}'.`, { param: 'id' });
}

/**
 * Accounts, keys, credits and usage queries: what the admin API and the CLI do. Every change to a key or an account
 * forgets it in `keyCache` (the Authenticator's), so that it applies to this process's next request.
 */
export class AccountService {
  constructor(
    private readonly store: Store,
    /** Unix seconds. */
    private readonly nowSeconds: () => number,
    private readonly keyCache: KeyCache = new KeyCache(0, Date.now),
  ) {}

  async createAccount(name: string, creditsUsd: number, limits?: AccountLimits): Promise<Account> {
    const account = await this.store.createAccount({ name, now: this.nowSeconds(), limits });
    const credits = usdToMicros(creditsUsd);
    if (credits === 0) return account;
    return (await this.store.addCredits({ accountId: account.id, amountMicros: credits, note: 'initial credits', now: this.nowSeconds() }))!;
  }

  /** Replaces the limits every key of the account shares. */
  async setLimits(accountId: string, limits: AccountLimits): Promise<Account> {
    const account = await this.store.setAccountLimits(accountId, limits);
    this.keyCache.forgetAccount(accountId);
    if (!account) throw accountNotFound(accountId);
    return account;
  }

  listAccounts(): Promise<Account[]> {
    return this.store.listAccounts();
  }

  async getAccount(id: string): Promise<Account> {
    const account = await this.store.getAccount(id);
    if (!account) throw accountNotFound(id);
    return account;
  }

  async addCredits(accountId: string, amountUsd: number, note: string | null): Promise<Account> {
    await this.getAccount(accountId);
    const amount = usdToMicros(amountUsd);
    if (amount === 0) throw invalidRequest('amount_usd must not be zero (the smallest amount is 0.000001).', 'amount_usd');
    const account = await this.store.addCredits({ accountId, amountMicros: amount, note, now: this.nowSeconds() });
    this.keyCache.forgetAccount(accountId);
    if (!account) {
      throw invalidRequest('This debit would make the balance negative.', 'amount_usd', 'insufficient_balance');
    }
    return account;
  }

  /** Creates a key; the secret is returned here once and only its hash is stored. */
  async createKey(accountId: string, request: NewKeyRequest): Promise<{ key: ApiKey; secret: string }> {
    await this.getAccount(accountId);
    if (request.expiresAt !== null && request.expiresAt !== undefined && request.expiresAt <= this.nowSeconds()) {
      throw invalidRequest('expires_at must be in the future.', 'expires_at');
    }
    const secret = generateSecret();
    const key = await this.store.createKey({
      accountId,
      name: request.name,
      prefix: displayPrefix(secret),
      secretHash: hashSecret(secret),
      models: request.models ?? null,
      rpm: request.rpm ?? null,
      tpm: request.tpm ?? null,
      maxConcurrency: request.maxConcurrency ?? null,
      spendLimitMicros: request.spendLimitUsd === null || request.spendLimitUsd === undefined ? null : usdToMicros(request.spendLimitUsd),
      expiresAt: request.expiresAt ?? null,
      now: this.nowSeconds(),
    });
    return { key, secret };
  }

  async listKeys(accountId: string): Promise<ApiKey[]> {
    await this.getAccount(accountId);
    return this.store.listKeys(accountId);
  }

  async revokeKey(id: string): Promise<ApiKey> {
    const revoked = await this.store.revokeKey(id, this.nowSeconds());
    this.keyCache.forgetKey(id);
    if (!revoked) {
      throw new TokenmillError('not_found', 'key_not_found', `No API key with id '${id}'.`, { param: 'id' });
    }
    return (await this.store.getKey(id))!;
  }

  usageSummary(query: { accountId: string | null; start: number; end: number; groupBy: UsageGroupBy }): Promise<UsageSummaryRow[]> {
    return this.store.usageSummary(query);
  }

  listUsage(query: { accountId: string | null; limit: number; after: string | null }): Promise<{ records: UsageRecord[]; hasMore: boolean }> {
    return this.store.listUsage(query);
  }
}

import type { Account, ApiKey, Store } from '../../store/store.js';
import { TokenmillError } from '../errors.js';
import { hashSecret, sameHash } from '../keys/secrets.js';
import { KeyCache } from './key-cache.js';

/** Who is calling. */
export type Principal = { kind: 'admin' } | { kind: 'key'; key: ApiKey; account: Account } | { kind: 'anonymous' };

export const ADMIN_KEY_SETTING = 'admin_key_hash';

function invalidKey(message = 'Incorrect API key provided.'): TokenmillError {
  return new TokenmillError('authentication', 'invalid_api_key', message);
}

/**
 * Resolves an API key to a principal. Keys are looked up by their sha256 hash (the secret is never stored), then
 * the hash is compared again in constant time. Revocation and expiry are checked on every request, against the key
 * as the store holds it or as `keyCache` kept it: a revocation made through another instance (or in the database)
 * takes effect there within the cache's TTL, one made through this process's AccountService at once.
 */
export class Authenticator {
  private adminHash: string | null = null;

  constructor(
    private readonly store: Store,
    /** Unix seconds. */
    private readonly nowSeconds: () => number,
    /** Keys found recently; the default keeps none (every request looks its key up). */
    private readonly keyCache: KeyCache = new KeyCache(0, Date.now),
  ) {}

  /** Loads the admin key's hash (set at bootstrap). */
  async load(): Promise<void> {
    this.adminHash = await this.store.getSetting(ADMIN_KEY_SETTING);
  }

  async authenticate(secret: string | null): Promise<Principal> {
    if (secret === null || secret.length === 0) {
      throw invalidKey("You didn't provide an API key. Provide it as 'Authorization: Bearer KEY' or in an 'x-api-key' header.");
    }
    const hash = hashSecret(secret);
    if (this.adminHash !== null && sameHash(hash, this.adminHash)) return { kind: 'admin' };
    let found = this.keyCache.get(hash);
    if (found === null) {
      const generation = this.keyCache.generation;
      found = await this.store.findKeyWithAccountByHash(hash);
      if (!found) throw invalidKey();
      this.keyCache.put(hash, found, generation);
    }
    const { key, account } = found;
    const now = this.nowSeconds();
    if (key.revokedAt !== null) throw invalidKey('This API key has been revoked.');
    if (key.expiresAt !== null && key.expiresAt <= now) throw invalidKey('This API key has expired.');
    if (account.status !== 'active') {
      throw new TokenmillError('permission', 'account_inactive', `The account '${account.id}' is ${account.status}.`);
    }
    return { kind: 'key', key, account };
  }

  /** Whether the key may use the model (the allow-list, when set). */
  static mayUseModel(principal: Principal, model: string): boolean {
    if (principal.kind !== 'key') return true;
    return principal.key.models === null || principal.key.models.includes(model);
  }
}

/** The bearer token of `Authorization: Bearer KEY`, else the `x-api-key` header, else null. */
export function extractApiKey(headers: { authorization?: string; 'x-api-key'?: string | string[] }): string | null {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim().length > 0) return apiKey.trim();
  return null;
}

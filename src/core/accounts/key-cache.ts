import type { Account, ApiKey } from '../../store/store.js';

/** A key and its account as the store returned them. */
export interface KeyWithAccount {
  key: ApiKey;
  account: Account;
}

/** Entries kept at most; past it the oldest go first. */
const MAX_ENTRIES = 10_000;

/**
 * Keys found by their secret's hash, kept for `ttlMs` so that a client's requests do not each look the key up in the
 * store (a SQLite read transaction on every request; a round trip on PostgreSQL). Decision 0019.
 *
 * What the cache may hold back, for at most `ttlMs`: a revocation, an account's new limits or status, a key's changed
 * fields, made through another instance or by hand in the database. Changes made through this process's
 * AccountService forget the entries at once (`forgetKey`, `forgetAccount`). Expiry is checked on every request
 * against the cached `expiresAt`, and funds and spend limits are checked by the reservation in the store, so neither
 * lags. Unknown keys are never cached. Keyed by the sha256 hash: no secret is kept.
 */
export class KeyCache {
  readonly #entries = new Map<string, { found: KeyWithAccount; until: number }>();
  /** Bumped by every forget: a lookup that began before one must not cache what it read. */
  #generation = 0;

  constructor(
    /** How long an entry is used, ms; 0 turns the cache off. */
    private readonly ttlMs: number,
    /** ms since epoch. */
    private readonly nowMs: () => number,
  ) {}

  /** The entry for `secretHash`, while it is fresh. */
  get(secretHash: string): KeyWithAccount | null {
    const entry = this.#entries.get(secretHash);
    if (entry === undefined) return null;
    if (entry.until > this.nowMs()) return entry.found;
    this.#entries.delete(secretHash);
    return null;
  }

  /** Read before a store lookup and passed to `put`, which then keeps nothing if a forget came in between. */
  get generation(): number {
    return this.#generation;
  }

  put(secretHash: string, found: KeyWithAccount, generation: number): void {
    if (this.ttlMs <= 0 || generation !== this.#generation) return;
    this.#entries.delete(secretHash);
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(secretHash, { found, until: this.nowMs() + this.ttlMs });
  }

  /** Forgets a key that changed (revoked). */
  forgetKey(keyId: string): void {
    this.#forget((found) => found.key.id === keyId);
  }

  /** Forgets every key of an account that changed (limits, status, credits). */
  forgetAccount(accountId: string): void {
    this.#forget((found) => found.account.id === accountId);
  }

  #forget(matches: (found: KeyWithAccount) => boolean): void {
    this.#generation++;
    for (const [hash, entry] of this.#entries) if (matches(entry.found)) this.#entries.delete(hash);
  }
}

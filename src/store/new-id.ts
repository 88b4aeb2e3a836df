import { randomUUID } from 'node:crypto';

/**
 * A new id such as `acct_3f9c…`: the prefix names the kind, then 24 hex digits. Accounts and keys get 92 random bits;
 * ledger entries, files and batches get the time first (`orderedHex24`), since they are written in order and listed
 * or indexed by it.
 */
export function newId(prefix: 'acct' | 'key' | 'led' | 'file' | 'batch'): string {
  switch (prefix) {
    case 'file':
      // OpenAI spells file ids `file-…`.
      return `file-${orderedHex24()}`;
    case 'batch':
    case 'led':
      return `${prefix}_${orderedHex24()}`;
    default:
      return `${prefix}_${randomHex24()}`;
  }
}

/**
 * 24 hex digits from a v4 UUID (its 13th digit is the fixed version `4`; the other 23 are random): randomUUID draws
 * from a cached entropy pool, several times faster than randomBytes on the request path.
 */
export function randomHex24(): string {
  const uuid = randomUUID();
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24, 28);
}

/**
 * 24 hex digits: 48 bits of the time in ms, then 48 random bits. Lists page by (created_at, id) and created_at has
 * whole seconds, so the id keeps creation order within one. As a primary key it is inserted at the end of its index
 * instead of at a random leaf: one B-tree page written per commit instead of one per row (a ledger entry per request,
 * docs/decisions/0019). Two ids of one millisecond collide with probability 2^-48.
 */
export function orderedHex24(): string {
  const uuid = randomUUID();
  return Date.now().toString(16).padStart(12, '0').slice(-12) + uuid.slice(0, 8) + uuid.slice(9, 13);
}

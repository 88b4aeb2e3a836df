import { randomBytes, randomUUID } from 'node:crypto';

/** A random id such as `acct_3f9c…`: the prefix names the kind, then 24 hex digits (92 random bits). */
export function newId(prefix: 'acct' | 'key' | 'led' | 'file' | 'batch'): string {
  if (prefix === 'file' || prefix === 'batch') return newOrderedId(prefix);
  return `${prefix}_${randomHex24()}`;
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
 * Ids of files and batches (OpenAI spells them `file-…` and `batch_…`): 48 bits of the time in ms, then 48 random
 * bits, in hex. Lists page by (created_at, id); created_at has whole seconds, so the id keeps creation order within one.
 */
function newOrderedId(prefix: 'file' | 'batch'): string {
  const time = Date.now().toString(16).padStart(12, '0').slice(-12);
  return `${prefix}${prefix === 'file' ? '-' : '_'}${time}${randomBytes(6).toString('hex')}`;
}

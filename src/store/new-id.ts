import { randomBytes } from 'node:crypto';

/** A random id such as `acct_3f9c…`: the prefix names the kind, then 96 random bits in hex. */
export function newId(prefix: 'acct' | 'key' | 'led' | 'file' | 'batch'): string {
  if (prefix === 'file' || prefix === 'batch') return newOrderedId(prefix);
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

/**
 * Ids of files and batches (OpenAI spells them `file-…` and `batch_…`): 48 bits of the time in ms, then 48 random
 * bits, in hex. Lists page by (created_at, id); created_at has whole seconds, so the id keeps creation order within one.
 */
function newOrderedId(prefix: 'file' | 'batch'): string {
  const time = Date.now().toString(16).padStart(12, '0').slice(-12);
  return `${prefix}${prefix === 'file' ? '-' : '_'}${time}${randomBytes(6).toString('hex')}`;
}

import { randomBytes } from 'node:crypto';

/** A random id such as `acct_3f9c…`: the prefix names the kind, then 96 random bits in hex. */
export function newId(prefix: 'acct' | 'key' | 'led' | 'file' | 'batch'): string {
  // OpenAI spells file ids `file-…`.
  return `${prefix}${prefix === 'file' ? '-' : '_'}${randomBytes(12).toString('hex')}`;
}

import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Every API key starts with this, so leaked keys are recognisable (and scannable). */
export const KEY_PREFIX = 'tm-';
/** Characters of the secret kept for display (`tm-` + 8). */
const DISPLAY_LENGTH = KEY_PREFIX.length + 8;

/** A new secret: `tm-` + 32 random bytes in base64url (43 characters). */
export function generateSecret(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * sha256 hex of a secret. Secrets have 256 bits of entropy, so a fast hash is enough (no password stretching).
 * The one-shot `crypto.hash` skips the Hash object that `createHash().update().digest()` builds (every request hashes).
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

export function displayPrefix(secret: string): string {
  return secret.slice(0, DISPLAY_LENGTH);
}

/** Constant-time comparison of two hex digests. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

import { TokenmillError } from '../errors.js';

const limitNames = {
  rpm: 'requests per minute (rpm)',
  tpm: 'tokens per minute (tpm)',
} as const;

/** Seconds a client should wait: whole seconds, rounded up, at least 1 (as retry-after requires). */
export function retryAfterSeconds(msBeforeNext: number): number {
  return Math.max(1, Math.ceil(msBeforeNext / 1000));
}

/** A 1-minute window is full: it resets in `msBeforeNext`. `used` excludes the refused request. */
export function windowLimitExceeded(
  kind: keyof typeof limitNames,
  limit: number,
  used: number,
  requested: number,
  msBeforeNext: number,
): TokenmillError {
  const seconds = retryAfterSeconds(msBeforeNext);
  return new TokenmillError(
    'rate_limit',
    'rate_limit_exceeded',
    `Rate limit reached for ${limitNames[kind]}: limit ${limit}, used ${Math.max(0, used)}, requested ${requested}. ` +
      `Please try again in ${seconds}s.`,
    { retryAfterSeconds: seconds },
  );
}

/** All concurrency slots are held; one frees when a request ends, so retry soon. */
export function concurrencyLimitExceeded(limit: number, inFlight: number): TokenmillError {
  return new TokenmillError(
    'rate_limit',
    'rate_limit_exceeded',
    `Rate limit reached for concurrent requests: limit ${limit}, in flight ${inFlight}. ` +
      'Please try again when one of your requests has finished.',
    { retryAfterSeconds: 1 },
  );
}

/**
 * A reservation larger than the tpm limit itself can never be admitted. It is an invalid request (400), not a
 * rate limit (429), because clients retry 429s and this one would never pass.
 */
export function requestTooLarge(limit: number, reservedTokens: number): TokenmillError {
  return new TokenmillError(
    'invalid_request',
    'request_too_large',
    `Request too large for tokens per minute (tpm): limit ${limit}, requested ${reservedTokens} ` +
      '(prompt + max tokens). Reduce the prompt or max_tokens.',
  );
}

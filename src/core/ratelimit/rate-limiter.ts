/**
 * The rate limiter's contract: requests per minute, tokens per minute and concurrent requests, per subject
 * (an API key, or an account where it has limits of its own). Implemented over memory (one process) and Redis
 * (shared by every instance); `test/ratelimit/rate-limiter-contract.test.ts` holds both to the same tests.
 */

/** Limits of one subject; null means unlimited. */
export interface LimitSpec {
  /** Requests per 1-minute window. */
  rpm: number | null;
  /** Tokens (prompt + completion) per 1-minute window. */
  tpm: number | null;
  /** Requests in flight at once, across all instances. */
  maxConcurrency: number | null;
}

/** OpenAI's x-ratelimit-* values, before formatting (see headers.ts). Absent when the limit is not set. */
export interface RateLimitHeaders {
  limitRequests?: number;
  remainingRequests?: number;
  /** Milliseconds until the request window resets. */
  resetRequestsMs?: number;
  limitTokens?: number;
  remainingTokens?: number;
  /** Milliseconds until the token window resets. */
  resetTokensMs?: number;
}

/** An admitted request. Exactly one of finish or cancel should be called; later calls are no-ops. */
export interface Admission {
  /**
   * Call when the request ends, with the real token count (prompt + completion). Gives back the unused part of
   * the reservation (or charges the excess) and frees the concurrency slot.
   */
  finish(actualTokens: number): Promise<void>;
  /** Undo the admission entirely (request, tokens and slot), e.g. when a later check refused the request. */
  cancel(): Promise<void>;
  headers: RateLimitHeaders;
}

export interface RateLimiter {
  /**
   * Admits a request of `reservedTokens` (prompt + requested max tokens) for `subject`, or throws
   * TokenmillError('rate_limit', 'rate_limit_exceeded', message, {retryAfterSeconds}) having consumed nothing.
   * A reservation above the tpm limit can never be admitted and throws
   * TokenmillError('invalid_request', 'request_too_large') instead, so that clients do not retry it.
   */
  admit(subject: string, limits: LimitSpec, reservedTokens: number): Promise<Admission>;
  /** Current headers without consuming; {} for an unlimited subject. */
  peek(subject: string, limits: LimitSpec): Promise<RateLimitHeaders>;
  /** Releases the store's connection, if any. */
  close(): Promise<void>;
}

import { randomUUID } from 'node:crypto';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ConcurrencyCounter } from './concurrency-counter.js';
import { concurrencyLimitExceeded, requestTooLarge, windowLimitExceeded } from './rate-limit-errors.js';
import type { Admission, LimitSpec, RateLimiter, RateLimitHeaders } from './rate-limiter.js';

/** The part of a rate-limiter-flexible limiter used here. */
export type WindowLimiter = Pick<RateLimiterAbstract, 'consume' | 'reward' | 'penalty' | 'get'>;

/**
 * A limiter of `points` per 60-second window, its keys under `keyPrefix`. Limiters of the same prefix and different
 * points must share their counters, so that a changed limit applies to what was already consumed.
 */
export type WindowLimiterFactory = (keyPrefix: string, points: number) => WindowLimiter;

/** What differs between memory and Redis; everything else is here, once. */
export interface RateLimiterStore {
  keyPrefix: string;
  createWindowLimiter: WindowLimiterFactory;
  concurrency: ConcurrencyCounter;
  close(): Promise<void>;
}

type WindowKind = 'rpm' | 'tpm';

/** Points taken from one window at admission, and when that window ends (epoch ms). */
interface Taken {
  limiter: WindowLimiter;
  points: number;
  windowEndsAt: number;
  remaining: number;
}

/** What an admission holds until it is finished or cancelled. */
interface Held {
  leaseId: string | null;
  requests: Taken | null;
  tokens: Taken | null;
}

/**
 * A give-back this close to the window's end is skipped: arriving after the window expired, it would start the
 * next window below zero and grant more than the limit. Skipping only wastes the rest of an expiring window.
 */
const giveBackMarginMs = 1000;

/** The limiter over rate-limiter-flexible windows (rpm, tpm) and a lease counter (concurrency). */
export class FlexibleRateLimiter implements RateLimiter {
  readonly #store: RateLimiterStore;
  /** One limiter per (kind, points): rate-limiter-flexible fixes `points` per instance; the stored counter is per key. */
  readonly #windows = new Map<string, WindowLimiter>();

  constructor(store: RateLimiterStore) {
    this.#store = store;
  }

  async admit(subject: string, limits: LimitSpec, reservedTokens: number): Promise<Admission> {
    assertCount(reservedTokens, 'reservedTokens');
    if (limits.tpm !== null && reservedTokens > limits.tpm) throw requestTooLarge(limits.tpm, reservedTokens);
    const held: Held = { leaseId: null, requests: null, tokens: null };
    // The three checks run at once (with Redis: one round trip's wait instead of three); what the others took is
    // given back if one refuses, and the first refusal in this order is reported (not a failure to roll back).
    const checks = await Promise.allSettled([
      limits.maxConcurrency === null ? null : this.#lease(subject, limits.maxConcurrency),
      limits.rpm === null ? null : this.#take('rpm', subject, limits.rpm, 1),
      limits.tpm === null ? null : this.#take('tpm', subject, limits.tpm, reservedTokens),
    ]);
    const [lease, requests, tokens] = checks;
    if (lease.status === 'fulfilled') held.leaseId = lease.value;
    if (requests.status === 'fulfilled') held.requests = requests.value;
    if (tokens.status === 'fulfilled') held.tokens = tokens.value;
    const refusal = checks.find((check): check is PromiseRejectedResult => check.status === 'rejected');
    if (refusal !== undefined) {
      await this.#release(subject, held, reservedTokens, true).catch(() => undefined);
      throw refusal.reason;
    }

    let settled = false;
    const settle = async (tokensBack: number, requestBack: boolean): Promise<void> => {
      if (settled) return;
      settled = true;
      await this.#release(subject, held, tokensBack, requestBack);
    };
    return {
      headers: headersOf(limits, held),
      finish: async (actualTokens) => {
        assertCount(actualTokens, 'actualTokens');
        await settle(reservedTokens - actualTokens, false);
      },
      cancel: () => settle(reservedTokens, true),
    };
  }

  async peek(subject: string, limits: LimitSpec): Promise<RateLimitHeaders> {
    const headers: RateLimitHeaders = {};
    if (limits.rpm !== null) {
      const window = windowState(limits.rpm, await this.#window('rpm', limits.rpm).get(subject));
      headers.limitRequests = limits.rpm;
      headers.remainingRequests = window.remaining;
      headers.resetRequestsMs = window.resetMs;
    }
    if (limits.tpm !== null) {
      const window = windowState(limits.tpm, await this.#window('tpm', limits.tpm).get(subject));
      headers.limitTokens = limits.tpm;
      headers.remainingTokens = window.remaining;
      headers.resetTokensMs = window.resetMs;
    }
    return headers;
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  /** Takes a concurrency lease (its id), or throws the refusal. */
  async #lease(subject: string, maxConcurrency: number): Promise<string> {
    assertCount(maxConcurrency, 'maxConcurrency');
    const leaseId = randomUUID();
    const lease = await this.#store.concurrency.acquire(subject, maxConcurrency, leaseId);
    if (!lease.acquired) throw concurrencyLimitExceeded(maxConcurrency, lease.inFlight);
    return leaseId;
  }

  /** Consumes `points`, or gives them back and throws the refusal. */
  async #take(kind: WindowKind, subject: string, limit: number, points: number): Promise<Taken> {
    const limiter = this.#window(kind, limit);
    try {
      const result = await limiter.consume(subject, points);
      return { limiter, points, windowEndsAt: Date.now() + result.msBeforeNext, remaining: result.remainingPoints };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      // rate-limiter-flexible counts refused points too; a refused request must consume nothing.
      const windowEndsAt = Date.now() + rejection.msBeforeNext;
      await giveBack(limiter, subject, { points, windowEndsAt }, points);
      throw windowLimitExceeded(kind, limit, rejection.consumedPoints - points, points, rejection.msBeforeNext);
    }
  }

  /** Frees the slot; gives back `tokensBack` tokens (charges them when negative) and the request if asked. */
  async #release(subject: string, held: Held, tokensBack: number, requestBack: boolean): Promise<void> {
    const work: Promise<unknown>[] = [];
    if (held.leaseId !== null) work.push(this.#store.concurrency.release(subject, held.leaseId));
    if (held.requests !== null && requestBack) work.push(giveBack(held.requests.limiter, subject, held.requests, 1));
    if (held.tokens !== null && tokensBack > 0) work.push(giveBack(held.tokens.limiter, subject, held.tokens, tokensBack));
    if (held.tokens !== null && tokensBack < 0) work.push(held.tokens.limiter.penalty(subject, -tokensBack));
    for (const result of await Promise.allSettled(work)) {
      if (result.status === 'rejected') throw result.reason;
    }
  }

  #window(kind: WindowKind, points: number): WindowLimiter {
    assertCount(points, kind);
    const id = `${kind}:${points}`;
    let limiter = this.#windows.get(id);
    if (limiter === undefined) {
      limiter = this.#store.createWindowLimiter(`${this.#store.keyPrefix}:${kind}`, points);
      this.#windows.set(id, limiter);
    }
    return limiter;
  }
}

async function giveBack(
  limiter: WindowLimiter,
  subject: string,
  taken: { points: number; windowEndsAt: number },
  points: number,
): Promise<void> {
  if (points <= 0 || Date.now() >= taken.windowEndsAt - giveBackMarginMs) return;
  await limiter.reward(subject, Math.min(points, taken.points));
}

function headersOf(limits: LimitSpec, held: Held): RateLimitHeaders {
  const headers: RateLimitHeaders = {};
  const now = Date.now();
  if (limits.rpm !== null && held.requests !== null) {
    headers.limitRequests = limits.rpm;
    headers.remainingRequests = held.requests.remaining;
    headers.resetRequestsMs = Math.max(0, held.requests.windowEndsAt - now);
  }
  if (limits.tpm !== null && held.tokens !== null) {
    headers.limitTokens = limits.tpm;
    headers.remainingTokens = held.tokens.remaining;
    headers.resetTokensMs = Math.max(0, held.tokens.windowEndsAt - now);
  }
  return headers;
}

/** A window with no record (or an expired one) is fresh: all remaining, nothing to reset. */
function windowState(limit: number, result: RateLimiterRes | null): { remaining: number; resetMs: number } {
  if (result === null || result.msBeforeNext <= 0) return { remaining: limit, resetMs: 0 };
  return { remaining: Math.max(0, limit - result.consumedPoints), resetMs: result.msBeforeNext };
}

function assertCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

import type { Admission, LimitSpec, RateLimiter, RateLimitHeaders } from './rate-limiter.js';

export interface LimitedSubject {
  /** e.g. `key:<id>` or `account:<id>`; subjects of different kinds must not collide. */
  subject: string;
  limits: LimitSpec;
}

/**
 * Admits one request against several subjects (an API key and its account): all of them or none. A refusal by a
 * later subject cancels the admissions already made. The headers report, for requests and for tokens, the subject
 * with the least remaining.
 */
export async function admitSubjects(
  limiter: RateLimiter,
  subjects: readonly LimitedSubject[],
  reservedTokens: number,
): Promise<Admission> {
  const admissions: Admission[] = [];
  try {
    for (const { subject, limits } of subjects) admissions.push(await limiter.admit(subject, limits, reservedTokens));
  } catch (error) {
    await Promise.allSettled(admissions.map((admission) => admission.cancel()));
    throw error;
  }
  return {
    headers: tightest(admissions.map((admission) => admission.headers)),
    finish: async (actualTokens) => {
      await allOrThrow(admissions.map((admission) => admission.finish(actualTokens)));
    },
    cancel: async () => {
      await allOrThrow(admissions.map((admission) => admission.cancel()));
    },
  };
}

function tightest(all: RateLimitHeaders[]): RateLimitHeaders {
  const requests = leastBy(all, (headers) => headers.remainingRequests);
  const tokens = leastBy(all, (headers) => headers.remainingTokens);
  const headers: RateLimitHeaders = {};
  if (requests !== undefined) {
    headers.limitRequests = requests.limitRequests;
    headers.remainingRequests = requests.remainingRequests;
    headers.resetRequestsMs = requests.resetRequestsMs;
  }
  if (tokens !== undefined) {
    headers.limitTokens = tokens.limitTokens;
    headers.remainingTokens = tokens.remainingTokens;
    headers.resetTokensMs = tokens.resetTokensMs;
  }
  return headers;
}

function leastBy(all: RateLimitHeaders[], remaining: (headers: RateLimitHeaders) => number | undefined): RateLimitHeaders | undefined {
  let least: RateLimitHeaders | undefined;
  for (const headers of all) {
    const value = remaining(headers);
    if (value === undefined) continue;
    const leastValue = least === undefined ? undefined : remaining(least);
    if (leastValue === undefined || value < leastValue) least = headers;
  }
  return least;
}

async function allOrThrow(work: Promise<void>[]): Promise<void> {
  for (const result of await Promise.allSettled(work)) {
    if (result.status === 'rejected') throw result.reason;
  }
}

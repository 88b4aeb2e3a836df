import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { TokenmillError } from '../../src/core/errors.js';
import { admitSubjects } from '../../src/core/ratelimit/admit-subjects.js';
import { createRateLimiter } from '../../src/core/ratelimit/create-rate-limiter.js';
import { formatRateLimitHeaders } from '../../src/core/ratelimit/headers.js';
import type { LimitSpec, RateLimiter } from '../../src/core/ratelimit/rate-limiter.js';

// One contract, run on memory and on a real Redis (STYLE.md 9). Each run writes under its own key prefix and
// deletes it afterwards, so runs never collide.
const redisUrl = process.env.TOKENMILL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = `tokenmill-test:${randomUUID()}`;

/** Why Redis cannot be used, or null. Asked once, without retries, so that a missing Redis fails fast. */
async function probeRedis(url: string): Promise<string | null> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (error) {
    return `Redis at ${url} is not reachable (${String(error)}); start it (.ci/run does) or set TOKENMILL_TEST_REDIS_URL.`;
  } finally {
    redis.disconnect();
  }
}

const redisProblem = await probeRedis(redisUrl);
if (redisProblem !== null) {
  test('Redis for the contract suite is reachable', () => assert.fail(redisProblem));
} else {
  after(async () => {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
}

const unlimited: LimitSpec = { rpm: null, tpm: null, maxConcurrency: null };
const limits = (spec: Partial<LimitSpec>): LimitSpec => ({ ...unlimited, ...spec });
const newSubject = (): string => `key:${randomUUID()}`;

/** Asserts a rate-limit refusal whose message matches and whose retry-after lies in [min, max] seconds. */
async function assertRefused(attempt: Promise<unknown>, message: RegExp, retryAfter: [number, number] = [1, 60]): Promise<void> {
  await assert.rejects(attempt, (error: unknown) => {
    assert.ok(error instanceof TokenmillError, String(error));
    assert.equal(error.kind, 'rate_limit');
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.match(error.message, message);
    assert.ok(error.retryAfterSeconds !== null && Number.isInteger(error.retryAfterSeconds));
    assert.ok(error.retryAfterSeconds >= retryAfter[0] && error.retryAfterSeconds <= retryAfter[1], `${error.retryAfterSeconds}`);
    return true;
  });
}

const backends = [{ name: 'memory', redisUrl: null }, ...(redisProblem === null ? [{ name: 'redis', redisUrl }] : [])];
for (const backend of backends) {
  describe(`rate limiter contract on ${backend.name}`, () => {
    const opened: RateLimiter[] = [];
    const open = (concurrencyLeaseMs?: number): RateLimiter => {
      const limiter = createRateLimiter({ redisUrl: backend.redisUrl, keyPrefix, concurrencyLeaseMs });
      opened.push(limiter);
      return limiter;
    };
    after(() => Promise.all(opened.map((limiter) => limiter.close())));
    const limiter = open();

    it('admits rpm requests per minute, then refuses naming the limit, with retry-after', async () => {
      const subject = newSubject();
      for (let i = 0; i < 3; i++) await limiter.admit(subject, limits({ rpm: 3 }), 0);
      await assertRefused(
        limiter.admit(subject, limits({ rpm: 3 }), 0),
        /^Rate limit reached for requests per minute \(rpm\): limit 3, used 3, requested 1\. Please try again in \d+s\.$/,
        [59, 60],
      );
    });

    it('reserves tokens and gives back the unused part at finish', async () => {
      const subject = newSubject();
      const spec = limits({ tpm: 100 });
      const first = await limiter.admit(subject, spec, 80);
      assert.equal(first.headers.remainingTokens, 20);
      await assertRefused(limiter.admit(subject, spec, 30), /tokens per minute \(tpm\): limit 100, used 80, requested 30/);
      await first.finish(20);
      const second = await limiter.admit(subject, spec, 50);
      assert.equal(second.headers.remainingTokens, 30);
    });

    it('charges tokens used beyond the reservation', async () => {
      const subject = newSubject();
      const admission = await limiter.admit(subject, limits({ tpm: 100 }), 10);
      await admission.finish(60);
      assert.equal((await limiter.peek(subject, limits({ tpm: 100 }))).remainingTokens, 40);
    });

    it('finish is idempotent', async () => {
      const subject = newSubject();
      const admission = await limiter.admit(subject, limits({ tpm: 100, maxConcurrency: 1 }), 50);
      await admission.finish(10);
      await admission.finish(0);
      await admission.cancel();
      assert.equal((await limiter.peek(subject, limits({ tpm: 100 }))).remainingTokens, 90);
    });

    it('holds a concurrency slot until finish', async () => {
      const subject = newSubject();
      const spec = limits({ maxConcurrency: 2 });
      const first = await limiter.admit(subject, spec, 0);
      await limiter.admit(subject, spec, 0);
      await assertRefused(
        limiter.admit(subject, spec, 0),
        /^Rate limit reached for concurrent requests: limit 2, in flight 2\./,
        [1, 1],
      );
      await first.finish(0);
      await limiter.admit(subject, spec, 0);
    });

    it('a refusal consumes nothing of the other limits', async () => {
      const subject = newSubject();
      const spec = limits({ rpm: 5, tpm: 100, maxConcurrency: 2 });
      await limiter.admit(subject, spec, 90);
      await assertRefused(limiter.admit(subject, spec, 20), /tokens per minute/);
      const after = await limiter.peek(subject, spec);
      assert.equal(after.remainingRequests, 4);
      assert.equal(after.remainingTokens, 10);
      await limiter.admit(subject, spec, 10); // the refused request holds no concurrency slot

      const other = newSubject();
      await limiter.admit(other, limits({ rpm: 1, tpm: 100 }), 10);
      await assertRefused(limiter.admit(other, limits({ rpm: 1, tpm: 100 }), 10), /requests per minute/);
      assert.equal((await limiter.peek(other, limits({ rpm: 1, tpm: 100 }))).remainingTokens, 90);
    });

    it('cancel gives back the request, the tokens and the slot', async () => {
      const subject = newSubject();
      const spec = limits({ rpm: 5, tpm: 100, maxConcurrency: 1 });
      const admission = await limiter.admit(subject, spec, 70);
      await admission.cancel();
      const headers = await limiter.peek(subject, spec);
      assert.equal(headers.remainingRequests, 5);
      assert.equal(headers.remainingTokens, 100);
      await limiter.admit(subject, spec, 100);
    });

    it('refuses a reservation above the tpm limit at once, as a request that can never pass', async () => {
      const subject = newSubject();
      await assert.rejects(limiter.admit(subject, limits({ rpm: 5, tpm: 100 }), 101), (error: unknown) => {
        assert.ok(error instanceof TokenmillError);
        assert.equal(error.kind, 'invalid_request');
        assert.equal(error.code, 'request_too_large');
        assert.match(error.message, /tokens per minute \(tpm\): limit 100, requested 101/);
        return true;
      });
      assert.equal((await limiter.peek(subject, limits({ rpm: 5 }))).remainingRequests, 5);
    });

    it('reports OpenAI headers', async () => {
      const subject = newSubject();
      const spec = limits({ rpm: 10, tpm: 1000, maxConcurrency: 4 });
      const { headers } = await limiter.admit(subject, spec, 250);
      assert.deepEqual({ ...headers, resetRequestsMs: 0, resetTokensMs: 0 }, {
        limitRequests: 10,
        remainingRequests: 9,
        resetRequestsMs: 0,
        limitTokens: 1000,
        remainingTokens: 750,
        resetTokensMs: 0,
      });
      for (const reset of [headers.resetRequestsMs, headers.resetTokensMs]) assert.ok(reset !== undefined && reset > 55_000 && reset <= 60_000);
      const map = formatRateLimitHeaders(headers);
      assert.equal(map['x-ratelimit-remaining-tokens'], '750');
      assert.match(map['x-ratelimit-reset-requests'], /^(\d+(\.\d+)?s|1m0s)$/);
      assert.deepEqual(formatRateLimitHeaders((await limiter.admit(subject, unlimited, 5)).headers), {});
      assert.deepEqual(await limiter.peek(subject, unlimited), {});
    });

    it('admits exactly the limit from a burst of concurrent requests', async () => {
      const subject = newSubject();
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => limiter.admit(subject, limits({ rpm: 10 }), 0)));
      assert.equal(results.filter((result) => result.status === 'fulfilled').length, 10);
      assert.equal((await limiter.peek(subject, limits({ rpm: 20 }))).remainingRequests, 10, 'refusals consumed nothing');
    });

    it('frees the slot of a request that never finishes (a crashed instance) after the lease', async () => {
      const leased = open(300);
      const subject = newSubject();
      await leased.admit(subject, limits({ maxConcurrency: 1 }), 0);
      await assertRefused(leased.admit(subject, limits({ maxConcurrency: 1 }), 0), /concurrent requests/, [1, 1]);
      await sleep(400);
      await leased.admit(subject, limits({ maxConcurrency: 1 }), 0);
    });

    it('admits a key and its account together or not at all', async () => {
      const key = { subject: newSubject(), limits: limits({ rpm: 10, tpm: 1000 }) };
      const account = { subject: `account:${randomUUID()}`, limits: limits({ rpm: 2, tpm: 500 }) };
      const first = await admitSubjects(limiter, [key, account], 100);
      assert.equal(first.headers.remainingRequests, 1);
      assert.equal(first.headers.remainingTokens, 400);
      await admitSubjects(limiter, [key, account], 100);
      await assertRefused(admitSubjects(limiter, [key, account], 100), /requests per minute \(rpm\): limit 2/);
      const keyHeaders = await limiter.peek(key.subject, key.limits);
      assert.equal(keyHeaders.remainingRequests, 8);
      assert.equal(keyHeaders.remainingTokens, 800);
      await first.finish(40);
      assert.equal((await limiter.peek(account.subject, account.limits)).remainingTokens, 360);
    });
  });
}

describe('rate limiter on redis, shared by instances', { skip: redisProblem !== null && 'Redis is not reachable' }, () => {
  // Two limiters, two connections: like two server processes.
  const instances = [createRateLimiter({ redisUrl, keyPrefix }), createRateLimiter({ redisUrl, keyPrefix })];
  after(() => Promise.all(instances.map((limiter) => limiter.close())));
  const burst = (subject: string, spec: LimitSpec, tokens: number) =>
    Promise.allSettled(Array.from({ length: 30 }, (_, i) => instances[i % 2].admit(subject, spec, tokens)));
  const admitted = <T>(results: PromiseSettledResult<T>[]): T[] =>
    results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));

  it('never admits more than the rpm limit together', async () => {
    const subject = newSubject();
    const results = await burst(subject, limits({ rpm: 10 }), 0);
    assert.equal(admitted(results).length, 10);
    for (const result of results) if (result.status === 'rejected') assert.equal((result.reason as TokenmillError).kind, 'rate_limit');
    assert.equal((await instances[1].peek(subject, limits({ rpm: 20 }))).remainingRequests, 10);
  });

  it('never admits more than the tpm limit together', async () => {
    const subject = newSubject();
    assert.equal(admitted(await burst(subject, limits({ tpm: 100 }), 10)).length, 10);
  });

  it('shares the concurrency limit, and a finish on one frees a slot for the other', async () => {
    const subject = newSubject();
    const spec = limits({ maxConcurrency: 3 });
    const held = admitted(await burst(subject, spec, 0));
    assert.equal(held.length, 3);
    await assertRefused(instances[0].admit(subject, spec, 0), /concurrent requests: limit 3, in flight 3/, [1, 1]);
    await held[0].finish(0);
    await instances[0].admit(subject, spec, 0);
  });
});

import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { FlexibleRateLimiter } from './flexible-rate-limiter.js';
import { MemoryConcurrencyCounter } from './memory-concurrency-counter.js';
import { createMemoryWindowLimiters } from './memory-window-limiters.js';
import type { RateLimiter } from './rate-limiter.js';
import { RedisConcurrencyCounter } from './redis-concurrency-counter.js';

export interface RateLimiterOptions {
  /** Redis shared by all instances; null keeps the limits in this process's memory. */
  redisUrl: string | null;
  /** Prefix of every key in the store; default 'tokenmill:ratelimit'. */
  keyPrefix?: string;
  /**
   * How long a concurrency slot is held at most (ms), when its request never finishes (a crashed instance).
   * Must exceed the longest request; default 15 minutes.
   */
  concurrencyLeaseMs?: number;
}

const windowSeconds = 60;
const defaultLeaseMs = 15 * 60_000;

/** The limiter on memory when `redisUrl` is null, else on Redis (the limiter owns the connection it opens). */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const keyPrefix = options.keyPrefix ?? 'tokenmill:ratelimit';
  const leaseMs = options.concurrencyLeaseMs ?? defaultLeaseMs;
  if (options.redisUrl === null) {
    return new FlexibleRateLimiter({
      keyPrefix,
      createWindowLimiter: createMemoryWindowLimiters(windowSeconds),
      concurrency: new MemoryConcurrencyCounter(leaseMs),
      close: async () => undefined,
    });
  }
  // Few retries: a request should fail, not hang, while Redis is away.
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5_000 });
  return new FlexibleRateLimiter({
    keyPrefix,
    // A limiter per points value; they share counters because the counters live in Redis, by key.
    createWindowLimiter: (prefix, points) =>
      new RateLimiterRedis({ storeClient: redis, keyPrefix: prefix, points, duration: windowSeconds }),
    concurrency: new RedisConcurrencyCounter(redis, keyPrefix, leaseMs),
    close: async () => {
      await redis.quit();
    },
  });
}

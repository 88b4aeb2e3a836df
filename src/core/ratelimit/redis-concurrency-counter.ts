import type { Redis } from 'ioredis';
import type { ConcurrencyCounter } from './concurrency-counter.js';

// One sorted set per subject: member = lease id, score = expiry in Redis's own clock (ms), so instances with
// skewed clocks agree. Each script prunes expired leases first; the key's TTL is the newest lease's, so an
// idle subject leaves nothing behind.
const nowMs = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) ";

/** KEYS[1] = set; ARGV = limit, lease ms, lease id. Returns {acquired 0|1, in flight}. */
const acquireScript = `${nowMs}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local inFlight = redis.call('ZCARD', KEYS[1])
if inFlight >= tonumber(ARGV[1]) then return {0, inFlight} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, inFlight + 1}`;

const countScript = `${nowMs} return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** Leases shared by every instance through one Redis. */
export class RedisConcurrencyCounter implements ConcurrencyCounter {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #leaseMs: number;

  constructor(redis: Redis, keyPrefix: string, leaseMs: number) {
    this.#redis = redis;
    this.#keyPrefix = keyPrefix;
    this.#leaseMs = leaseMs;
  }

  async acquire(subject: string, limit: number, leaseId: string): Promise<{ acquired: boolean; inFlight: number }> {
    const result = await this.#redis.eval(acquireScript, 1, this.#key(subject), limit, this.#leaseMs, leaseId);
    if (!Array.isArray(result) || result.length !== 2) throw new Error(`Unexpected concurrency script result: ${String(result)}`);
    return { acquired: Number(result[0]) === 1, inFlight: Number(result[1]) };
  }

  async release(subject: string, leaseId: string): Promise<void> {
    await this.#redis.zrem(this.#key(subject), leaseId);
  }

  async count(subject: string): Promise<number> {
    return Number(await this.#redis.eval(countScript, 1, this.#key(subject)));
  }

  #key(subject: string): string {
    return `${this.#keyPrefix}:concurrency:${subject}`;
  }
}

import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { WindowLimiter, WindowLimiterFactory } from './flexible-rate-limiter.js';

/**
 * Memory windows: one RateLimiterMemory (one store) per key prefix, whatever the points, so that limiters of
 * different limits share their counters as they do in Redis. Each call sets `points` first; that is race-free
 * because RateLimiterMemory reads it synchronously, within the call.
 */
export function createMemoryWindowLimiters(windowSeconds: number): WindowLimiterFactory {
  const stores = new Map<string, RateLimiterMemory>();
  return (keyPrefix, points) => {
    let store = stores.get(keyPrefix);
    if (store === undefined) {
      store = new RateLimiterMemory({ keyPrefix, points, duration: windowSeconds });
      stores.set(keyPrefix, store);
    }
    const shared = store;
    const withPoints = (): RateLimiterMemory => {
      shared.points = points;
      return shared;
    };
    const limiter: WindowLimiter = {
      consume: (key, pointsToConsume) => withPoints().consume(key, pointsToConsume),
      reward: (key, pointsToReward) => withPoints().reward(key, pointsToReward),
      penalty: (key, pointsToCharge) => withPoints().penalty(key, pointsToCharge),
      get: (key) => withPoints().get(key),
    };
    return limiter;
  };
}

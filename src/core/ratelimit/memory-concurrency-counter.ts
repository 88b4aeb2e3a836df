import type { ConcurrencyCounter } from './concurrency-counter.js';

/** Leases of one process: subject -> lease id -> expiry (epoch ms). */
export class MemoryConcurrencyCounter implements ConcurrencyCounter {
  readonly #leases = new Map<string, Map<string, number>>();
  readonly #leaseMs: number;

  constructor(leaseMs: number) {
    this.#leaseMs = leaseMs;
  }

  async acquire(subject: string, limit: number, leaseId: string): Promise<{ acquired: boolean; inFlight: number }> {
    const leases = this.#live(subject);
    if (leases.size >= limit) return { acquired: false, inFlight: leases.size };
    leases.set(leaseId, Date.now() + this.#leaseMs);
    this.#leases.set(subject, leases);
    return { acquired: true, inFlight: leases.size };
  }

  async release(subject: string, leaseId: string): Promise<void> {
    const leases = this.#leases.get(subject);
    if (leases === undefined) return;
    leases.delete(leaseId);
    if (leases.size === 0) this.#leases.delete(subject);
  }

  async count(subject: string): Promise<number> {
    return this.#live(subject).size;
  }

  /** The subject's leases with the expired ones dropped. */
  #live(subject: string): Map<string, number> {
    const leases = this.#leases.get(subject) ?? new Map<string, number>();
    const now = Date.now();
    for (const [leaseId, expiresAt] of leases) if (expiresAt <= now) leases.delete(leaseId);
    if (leases.size === 0) this.#leases.delete(subject);
    return leases;
  }
}

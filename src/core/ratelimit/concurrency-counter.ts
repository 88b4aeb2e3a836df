/**
 * Requests in flight per subject, held as leases: each admitted request holds one lease until it is released
 * or `leaseMs` passes. The expiry is what makes a crashed instance's slots come back without anyone's help.
 */
export interface ConcurrencyCounter {
  /** Takes a lease if fewer than `limit` are held; `inFlight` counts the held leases, this one included. */
  acquire(subject: string, limit: number, leaseId: string): Promise<{ acquired: boolean; inFlight: number }>;
  release(subject: string, leaseId: string): Promise<void>;
  /** Leases held now. */
  count(subject: string): Promise<number>;
}

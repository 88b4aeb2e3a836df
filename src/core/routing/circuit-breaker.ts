export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * A deployment's circuit breaker. Closed: requests flow, consecutive failures are counted. After `failureThreshold`
 * of them it opens: no requests for `cooldownMs`. Then it is half-open: one real request at a time is let through
 * as a probe; its success closes the circuit, its failure opens it for another cool-down. Times are ms from `now`.
 */
export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly failureThreshold: number,
    private readonly cooldownMs: number,
  ) {}

  state(now: number): BreakerState {
    if (this.stateValue === 'open' && now >= this.openUntil) return 'half-open';
    return this.stateValue;
  }

  /** Whether a request may be sent now (closed, or half-open with no probe in flight). */
  canTake(now: number): boolean {
    const state = this.state(now);
    return state === 'closed' || (state === 'half-open' && !this.probing);
  }

  /** A request is sent (call only when `canTake`); in half-open it is the probe. */
  take(now: number): void {
    if (this.state(now) !== 'closed') {
      this.stateValue = 'half-open';
      this.probing = true;
    }
  }

  /** The deployment answered properly: the circuit closes. */
  succeed(): void {
    this.stateValue = 'closed';
    this.consecutiveFailures = 0;
    this.probing = false;
  }

  /** A retryable failure (connection, timeout, 408/409/429/5xx). */
  fail(now: number): void {
    this.probing = false;
    this.consecutiveFailures++;
    if (this.stateValue === 'half-open' || this.consecutiveFailures >= this.failureThreshold) {
      this.stateValue = 'open';
      this.openUntil = now + this.cooldownMs;
    }
  }

  /** The request ended with no verdict on the deployment (the client left, or the client's own error). */
  release(): void {
    this.probing = false;
  }

  /** ms until a probe may be sent (0 when requests flow). */
  waitMs(now: number): number {
    return this.stateValue === 'open' ? Math.max(0, this.openUntil - now) : 0;
  }
}

/**
 * Tracks the abort controllers of in-flight requests, so a shutdown can abort what is left after its grace period.
 */
export class RequestLifecycle {
  private readonly inflight = new Set<AbortController>();
  /** performance.now() when a request last started or ended. */
  private lastActivity = Number.NEGATIVE_INFINITY;
  /** Set when shutdown begins: readiness turns false and new generation is refused. */
  closing = false;

  get size(): number {
    return this.inflight.size;
  }

  track(controller: AbortController): () => void {
    this.inflight.add(controller);
    this.lastActivity = performance.now();
    return () => {
      this.inflight.delete(controller);
      this.lastActivity = performance.now();
    };
  }

  /** Whether a request is in flight, or one ended less than `quietMs` ago. */
  busyWithin(quietMs: number): boolean {
    return this.inflight.size > 0 || performance.now() - this.lastActivity < quietMs;
  }

  abortAll(): void {
    for (const controller of this.inflight) controller.abort();
  }

  /** Resolves when nothing is in flight, or after `timeoutMs`; returns whether it drained. */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.inflight.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
    return this.inflight.size === 0;
  }
}

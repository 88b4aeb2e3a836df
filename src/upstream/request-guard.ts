/** Why an upstream request was cut short by its guard. */
export type GuardReason = 'client' | 'idle' | 'total';

/**
 * One upstream request's abort controller and its timers: the caller's signal, the longest wait for the response
 * headers and between two stream chunks (`idleMs`, re-armed by `touch`), and the longest total time (`totalMs`,
 * capped by the request's deadline). `reason` says which one fired.
 */
export class RequestGuard {
  readonly controller = new AbortController();
  reason: GuardReason | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly totalTimer: NodeJS.Timeout;
  private readonly onClientAbort = () => this.abort('client');
  private handedOver = false;

  constructor(
    private readonly caller: AbortSignal,
    private readonly idleMs: number,
    totalMs: number,
  ) {
    this.totalTimer = setTimeout(() => this.abort('total'), Math.max(0, totalMs));
    if (caller.aborted) this.abort('client');
    else caller.addEventListener('abort', this.onClientAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Something arrived: the idle timer starts again. */
  touch(): void {
    if (this.reason !== null) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.abort('idle'), this.idleMs);
  }

  /**
   * Hands the request to a background read of its body's end (the answer is complete): the caller's abort no longer
   * applies and its `dispose` does nothing; the timers keep running until the returned release is called.
   */
  handOver(): (abortRequest: boolean) => void {
    this.handedOver = true;
    this.caller.removeEventListener('abort', this.onClientAbort);
    return (abortRequest) => this.release(abortRequest);
  }

  /**
   * Stops the timers; `abortRequest` also aborts the HTTP request (the socket closes), for streams left unfinished.
   * Does nothing once the request was handed over (see `handOver`).
   */
  dispose(abortRequest: boolean): void {
    if (!this.handedOver) this.release(abortRequest);
  }

  private release(abortRequest: boolean): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    clearTimeout(this.totalTimer);
    this.caller.removeEventListener('abort', this.onClientAbort);
    if (abortRequest && !this.controller.signal.aborted) this.controller.abort();
  }

  private abort(reason: GuardReason): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.controller.abort();
  }
}

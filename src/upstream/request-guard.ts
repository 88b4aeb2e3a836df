import { EventEmitter } from 'node:events';

/** Why an upstream request was cut short by its guard. */
export type GuardReason = 'client' | 'idle' | 'total';

/**
 * One upstream request's cancellation and its time limits: the caller's signal, the longest wait for the response
 * headers and between two stream chunks (`idleMs`, restarted by `touch`), and the longest total time (`totalMs`,
 * capped by the request's deadline). `firedBy` says which one fired. The transport watches the guard (its `aborted`
 * and its `abort` event): firing aborts the request and closes its socket.
 *
 * One timer serves both limits, and `touch` only notes the time: the timer, when it fires, sleeps again until the
 * earlier of the two limits as they stand then. (An AbortController and a timer per limit re-armed on every chunk cost
 * ~20-30 us per request on the 2-vCPU VM: docs/decisions/0020.)
 */
export class RequestGuard extends EventEmitter {
  /** What cut the request short; null while nothing did. */
  firedBy: GuardReason | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly totalAt: number;
  private lastActivity: number;
  private readonly onClientAbort = () => this.abort('client');
  private handedOver = false;
  private released = false;
  private cancelled = false;

  constructor(
    private readonly caller: AbortSignal,
    private readonly idleMs: number,
    totalMs: number,
  ) {
    super();
    this.lastActivity = performance.now();
    this.totalAt = this.lastActivity + Math.max(0, totalMs);
    if (caller.aborted) {
      this.abort('client');
      return;
    }
    caller.addEventListener('abort', this.onClientAbort, { once: true });
    this.arm();
  }

  /** Whether the request was told to stop (a limit, the caller, or an unfinished stream's dispose). */
  get aborted(): boolean {
    return this.cancelled;
  }

  /** Something arrived: the idle limit counts from now. */
  touch(): void {
    this.lastActivity = performance.now();
  }

  /**
   * Hands the request to a background read of its body's end (the answer is complete): the caller's abort no longer
   * applies and its `dispose` does nothing; the limits keep running until the returned release is called.
   */
  handOver(): (abortRequest: boolean) => void {
    this.handedOver = true;
    this.caller.removeEventListener('abort', this.onClientAbort);
    return (abortRequest) => this.release(abortRequest);
  }

  /**
   * Stops the timer; `abortRequest` also cancels the HTTP request (the socket closes), for streams left unfinished.
   * Does nothing once the request was handed over (see `handOver`).
   */
  dispose(abortRequest: boolean): void {
    if (!this.handedOver) this.release(abortRequest);
  }

  private release(abortRequest: boolean): void {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.caller.removeEventListener('abort', this.onClientAbort);
    if (abortRequest) this.cancel();
  }

  /** Sleeps until the earlier limit, then checks both against the time of the last activity. */
  private arm(): void {
    const now = performance.now();
    if (now >= this.totalAt) {
      this.abort('total');
      return;
    }
    const idleAt = this.lastActivity + this.idleMs;
    if (now >= idleAt) {
      this.abort('idle');
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.released) this.arm();
    }, Math.min(MAX_TIMER_MS, Math.ceil(Math.min(idleAt, this.totalAt) - now)));
  }

  private abort(reason: GuardReason): void {
    if (this.firedBy !== null) return;
    this.firedBy = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.cancel();
  }

  /** Tells the request to stop (once). */
  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('abort');
  }
}

/** setTimeout's longest delay (a longer one fires at once); the timer re-arms when it wakes early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

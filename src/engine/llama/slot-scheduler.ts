import { AbortedError, TokenmillError } from '../../core/errors.js';

/**
 * The scheduler of one model: it owns the sequence slots, the bounded wait queue, priorities and deadlines.
 * A request either gets a slot at once, waits in the queue (lowest `priority` first, then arrival order), or is
 * refused with an `overloaded` error when the queue is full. Waiting ends with a slot, the deadline (timeout), or
 * the caller's abort.
 */
export interface AcquireOptions<Slot> {
  /** Lower runs first. */
  priority: number;
  /** Absolute ms since epoch. */
  deadline: number;
  signal: AbortSignal;
  /** Picks among free slots (for prefix affinity); default the first. */
  choose?: (free: readonly Slot[]) => Slot;
  /**
   * Makes the holder preemptible: called (once) when a more urgent request waits and no slot is free; the holder
   * should then stop soon and release its slot (batch work gives way to interactive requests).
   */
  preempt?: () => void;
}

interface Holder {
  priority: number;
  preempt: (() => void) | null;
}

interface Waiter<Slot> {
  options: AcquireOptions<Slot>;
  order: number;
  resolve: (slot: Slot) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

export class SlotScheduler<Slot> {
  private readonly free: Slot[];
  private readonly waiters: Waiter<Slot>[] = [];
  private readonly holders = new Map<Slot, Holder>();
  private arrivals = 0;
  private closed = false;

  constructor(
    slots: readonly Slot[],
    private readonly maxQueue: number,
    /** Seconds a refused client is told to wait. */
    private readonly retryAfterSeconds = 1,
  ) {
    this.free = [...slots];
  }

  get queueDepth(): number {
    return this.waiters.length;
  }

  get freeSlots(): number {
    return this.free.length;
  }

  acquire(options: AcquireOptions<Slot>): Promise<Slot> {
    if (this.closed) {
      return Promise.reject(new TokenmillError('unavailable', 'server_shutting_down', 'The server is shutting down.'));
    }
    if (options.signal.aborted) return Promise.reject(new AbortedError());
    if (this.free.length > 0 && this.waiters.length === 0) return Promise.resolve(this.take(options));
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(
        new TokenmillError('overloaded', 'queue_full', 'The model is at capacity and its queue is full. Retry shortly.', {
          retryAfterSeconds: this.retryAfterSeconds,
        }),
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter<Slot> = { options, order: this.arrivals++, resolve, reject, cleanup: () => {} };
      const onAbort = () => this.drop(waiter, new AbortedError());
      const timer = setTimeout(
        () =>
          this.drop(
            waiter,
            new TokenmillError('timeout', 'request_timeout', 'The request timed out while waiting for capacity.'),
          ),
        Math.max(0, options.deadline - Date.now()),
      );
      options.signal.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
      };
      this.insert(waiter);
      // Each waiter frees at most one slot held by less urgent, preemptible work.
      this.preemptFor(options.priority);
    });
  }

  /** Returns a slot; the most urgent waiter gets a free slot of its choice. */
  release(slot: Slot): void {
    this.holders.delete(slot);
    this.free.push(slot);
    while (this.free.length > 0 && this.waiters.length > 0) {
      const waiter = this.waiters.shift()!;
      waiter.cleanup();
      waiter.resolve(this.take(waiter.options));
    }
  }

  /** Refuses new work and fails every waiter. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(new TokenmillError('unavailable', 'server_shutting_down', 'The server is shutting down.'));
    }
  }

  private take(options: AcquireOptions<Slot>): Slot {
    const chosen = options.choose && this.free.length > 1 ? options.choose(this.free) : this.free[0];
    this.free.splice(this.free.indexOf(chosen), 1);
    this.holders.set(chosen, { priority: options.priority, preempt: options.preempt ?? null });
    return chosen;
  }

  /** Asks the least urgent preemptible holder that is less urgent than `priority` to give its slot back. */
  private preemptFor(priority: number): void {
    let victim: Holder | null = null;
    for (const holder of this.holders.values()) {
      if (holder.preempt !== null && holder.priority > priority && (victim === null || holder.priority > victim.priority)) victim = holder;
    }
    if (victim === null) return;
    const preempt = victim.preempt!;
    victim.preempt = null;
    preempt();
  }

  private insert(waiter: Waiter<Slot>): void {
    let index = this.waiters.length;
    while (index > 0 && this.waiters[index - 1].options.priority > waiter.options.priority) index--;
    this.waiters.splice(index, 0, waiter);
  }

  private drop(waiter: Waiter<Slot>, error: unknown): void {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    waiter.cleanup();
    waiter.reject(error);
  }
}

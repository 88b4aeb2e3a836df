import { randomBytes } from 'node:crypto';
import type { BatchStore, ClaimedLine, LineCompletion, UnansweredLine } from '../../store/batch-store.js';
import type { Store } from '../../store/store.js';
import type { BatchOutputLine } from '../../protocol/openai/batches.js';
import type { Principal } from '../accounts/authenticator.js';
import { TokenmillError } from '../errors.js';
import type { BatchLineRunner } from './batch-line-runner.js';

export interface BatchWorkerOptions {
  store: BatchStore & Pick<Store, 'getKey' | 'getAccount' | 'release'>;
  run: BatchLineRunner;
  /**
   * How many more lines the engine can take now without delaying interactive requests (idle sequences), given the
   * lines this worker runs (some of which the engine may not have seen yet).
   */
  capacity: (running: number) => number;
  /** Lines this worker runs at once at most. */
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  multiplier: readonly [number, number];
  /** Whether batches are billed (accounts enabled). */
  billed: boolean;
  /** ms since epoch. */
  now: () => number;
  log: (level: 'warn' | 'error', object: object, message: string) => void;
}

/** Finalizations per maintenance round. */
const FINALIZE_PER_ROUND = 10;

/**
 * Runs batch lines in the background, on every instance: claims lines when the engine has idle sequences (they run
 * at batch priority, so interactive requests are served first), renews the leases of its lines, aborts lines whose
 * batch was cancelled or expired, expires batches whose window ended and writes the result files of finished ones.
 * A line's result and its usage commit in one transaction, only while this worker still holds the line.
 */
export class BatchWorker {
  readonly workerId = `worker_${randomBytes(8).toString('hex')}`;
  private readonly running = new Map<string, { line: ClaimedLine; controller: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | null = null;
  private claiming = false;
  private claimAgain = false;
  private stopped = false;
  private maintaining: Promise<void> | null = null;

  constructor(private readonly options: BatchWorkerOptions) {}

  start(): void {
    this.schedule();
  }

  /** Looks for work now (a batch was just created). */
  kick(): void {
    if (!this.stopped) void this.claim().catch((error: unknown) => this.options.log('error', { err: error }, 'claiming batch lines failed'));
  }

  /** Stops claiming, aborts running lines and gives them back (pending again, for any instance to run). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const entry of this.running.values()) entry.controller.abort();
    await Promise.allSettled([...this.running.values()].map((entry) => entry.done));
    await this.maintaining;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.maintaining = this.maintain()
        .catch((error: unknown) => this.options.log('error', { err: error }, 'batch maintenance failed'))
        .finally(() => {
          this.maintaining = null;
          this.schedule();
        });
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  private async maintain(): Promise<void> {
    const { store } = this.options;
    if (this.running.size > 0) {
      // Only lines running before the renewal can be missing from it for a reason (cancelled, expired, taken over).
      const before = [...this.running];
      const held = await store.renewBatchLeases({ workerId: this.workerId, nowMs: this.options.now(), leaseMs: this.options.leaseMs });
      const keys = new Set(held.map((line) => lineKey(line.batchId, line.lineIndex, line.attempt)));
      for (const [key, entry] of before) if (!keys.has(key)) entry.controller.abort();
    }
    const now = Math.floor(this.options.now() / 1000);
    await store.expireBatches(now);
    await store.finalizeBatches({ now, limit: FINALIZE_PER_ROUND, render: unansweredLine });
    await this.claim();
  }

  /** Claims as many lines as there is room for and starts them. Re-entrant calls coalesce. */
  private async claim(): Promise<void> {
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        if (this.stopped) return;
        const room = Math.min(this.options.concurrency - this.running.size, this.options.capacity(this.running.size));
        if (room <= 0) continue;
        const lines = await this.options.store.claimBatchLines({ workerId: this.workerId, limit: room, nowMs: this.options.now(), leaseMs: this.options.leaseMs });
        if (this.stopped) {
          // Stopped while claiming: give the lines back at once rather than let their leases lapse.
          for (const line of lines) await this.options.store.retryBatchLine({ ...line, workerId: this.workerId, notBeforeMs: this.options.now() });
          return;
        }
        for (const line of lines) this.startLine(line);
      } while (this.claimAgain);
    } finally {
      this.claiming = false;
    }
  }

  private startLine(line: ClaimedLine): void {
    const controller = new AbortController();
    const key = lineKey(line.batchId, line.lineIndex, line.attempt);
    const done = this.runLine(line, controller.signal)
      .catch((error: unknown) => this.options.log('error', { err: error, batchId: line.batchId, line: line.lineIndex }, 'batch line failed'))
      .finally(() => {
        this.running.delete(key);
        this.kick();
      });
    this.running.set(key, { line, controller, done });
  }

  private async runLine(line: ClaimedLine, signal: AbortSignal): Promise<void> {
    const { store } = this.options;
    // One request id per run of the line: a run's hold is found again when its worker died and the line runs again.
    const requestId = lineRequestId(line.batchId, line.lineIndex, line.attempt);
    for (let attempt = 1; attempt < line.attempt; attempt++) await store.release(lineRequestId(line.batchId, line.lineIndex, attempt));
    const completion = (statusCode: number, body: unknown): LineCompletion => {
      const output: BatchOutputLine = { id: requestId, custom_id: line.customId, response: { status_code: statusCode, request_id: requestId, body }, error: null };
      return {
        batchId: line.batchId,
        lineIndex: line.lineIndex,
        workerId: this.workerId,
        attempt: line.attempt,
        status: statusCode === 200 ? 'succeeded' : 'failed',
        result: JSON.stringify(output),
        now: Math.floor(this.options.now() / 1000),
      };
    };
    const principal = await this.principal(line);
    const response = await this.options.run({
      endpoint: line.endpoint,
      body: JSON.parse(line.body) as unknown,
      principal,
      requestId,
      batchId: line.batchId,
      multiplier: this.options.multiplier,
      signal,
    });
    if (signal.aborted || response.retryAfterMs !== null) {
      // Stopped, cancelled or expired (the batch's sweep already answered the line), or no room now: nothing is
      // billed; the line runs again unless it was ended meanwhile.
      if (response.ticket) await response.ticket.settle({ usage: null, status: 'cancelled', latencyMs: 0, ttftMs: null });
      const notBefore = this.options.now() + (response.retryAfterMs ?? 0);
      await store.retryBatchLine({ batchId: line.batchId, lineIndex: line.lineIndex, workerId: this.workerId, attempt: line.attempt, notBeforeMs: notBefore });
      return;
    }
    const result = completion(response.statusCode, response.body);
    if (response.ticket) await response.ticket.settleBatchLine(response.outcome ?? { usage: null, status: 'failed', latencyMs: 0, ttftMs: null }, result);
    else await store.completeBatchLine(result, null);
  }

  /** The principal the line runs as: the batch's key, checked again now (revoked, expired, account suspended). */
  private async principal(line: ClaimedLine): Promise<Principal | TokenmillError> {
    if (!this.options.billed || line.keyId === null) return { kind: 'anonymous' };
    const [key, account] = await Promise.all([this.options.store.getKey(line.keyId), this.options.store.getAccount(line.accountId)]);
    const now = Math.floor(this.options.now() / 1000);
    if (!key || !account || key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt <= now)) {
      return new TokenmillError('authentication', 'invalid_api_key', 'The API key that created this batch was revoked or has expired.');
    }
    if (account.status !== 'active') {
      return new TokenmillError('permission', 'account_inactive', `The account '${account.id}' is ${account.status}.`);
    }
    return { kind: 'key', key, account };
  }
}

/** `batch_req_<batch hex>_<line>_<attempt>`: the usage record's id and the output line's `request_id`. */
function lineRequestId(batchId: string, lineIndex: number, attempt: number): string {
  return `batch_req_${batchId.replace(/^batch_/, '')}_${lineIndex}_${attempt}`;
}

function lineKey(batchId: string, lineIndex: number, attempt: number): string {
  return `${batchId}/${lineIndex}/${attempt}`;
}

/** The error-file line of a request that never ran. */
export function unansweredLine(line: UnansweredLine): string {
  const output: BatchOutputLine = {
    id: `batch_req_${randomBytes(12).toString('hex')}`,
    custom_id: line.customId,
    response: null,
    error:
      line.status === 'expired'
        ? { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' }
        : { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' },
  };
  return JSON.stringify(output);
}

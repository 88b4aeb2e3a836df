import type { Principal } from '../accounts/authenticator.js';
import type { TokenmillError } from '../errors.js';
import type { GateOutcome, Ticket } from '../metering/request-gate.js';

/** One batch line to run as the request its body describes. */
export interface BatchLineRequest {
  endpoint: string;
  /** The line's `body`, parsed JSON. */
  body: unknown;
  /** Who the line runs as, or why it may not run (the batch's key was revoked, its account suspended). */
  principal: Principal | TokenmillError;
  /** The line's request id: its usage record's id and the output line's `request_id`. */
  requestId: string;
  batchId: string;
  /** The batch price multiplier, [numerator, denominator]. */
  multiplier: readonly [number, number];
  signal: AbortSignal;
}

export interface BatchLineResponse {
  /** The HTTP status the request would have had, and its JSON body (a response or an OpenAI error). */
  statusCode: number;
  body: unknown;
  /** The admitted request's ticket (null: nothing to bill); the worker settles it with the line's result. */
  ticket: Ticket | null;
  outcome: GateOutcome | null;
  /** Set when the line should run again later (the server was at capacity, a rate limit), ms to wait. */
  retryAfterMs: number | null;
}

/**
 * Runs a line through the same path as an interactive request (parse, model access, translate, admit with the batch
 * id and discount, engine at batch priority, encode) without settling it. Implemented over the HTTP encoders by
 * http/batches/run-batch-line.ts and injected, so that core does not import http/.
 */
export type BatchLineRunner = (request: BatchLineRequest) => Promise<BatchLineResponse>;

import { AbortedError } from '../errors.js';
import type { TokenCounts } from '../billing/prices.js';
import { UsageTotals, type ChoiceEvent } from '../inference/run-choices.js';
import type { GateOutcome } from './request-gate.js';

/**
 * Watches a request's events to bill what was computed: the usage of every `end` event (cut-short choices
 * included), and the time to the first token.
 */
export class UsageMeter {
  private readonly totals: UsageTotals;
  private started = false;
  private firstTokenAt: number | null = null;

  constructor(
    n: number,
    /** performance.now() when the request arrived. */
    private readonly arrivedAt: number,
  ) {
    this.totals = new UsageTotals(n);
  }

  observe(event: ChoiceEvent): void {
    switch (event.type) {
      case 'prompt-processed':
        this.started = true;
        break;
      case 'text-delta':
      case 'tool-call-delta':
        this.firstTokenAt ??= performance.now();
        break;
      case 'end':
        this.started = true;
        this.totals.add(event.index, event.usage);
        break;
    }
  }

  /** The outcome to settle: `error` is what ended the request, if anything. */
  outcome(error: unknown, clientGone: boolean): GateOutcome {
    const usage: TokenCounts | null = this.started
      ? {
          promptTokens: this.totals.promptTokens,
          cachedTokens: this.totals.cachedTokens,
          completionTokens: this.totals.completionTokens,
          cacheWriteTokens: this.totals.cacheWriteTokens,
        }
      : null;
    return {
      usage,
      status: outcomeStatus(error, clientGone),
      latencyMs: performance.now() - this.arrivedAt,
      ttftMs: this.firstTokenAt === null ? null : this.firstTokenAt - this.arrivedAt,
    };
  }
}

/** `completed`, `cancelled` (the client went away) or `failed`, for a request that ended with `error` (or null). */
export function outcomeStatus(error: unknown, clientGone: boolean): string {
  if (error === null) return 'completed';
  return error instanceof AbortedError || clientGone ? 'cancelled' : 'failed';
}

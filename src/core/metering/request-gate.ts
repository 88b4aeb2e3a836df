import { admitSubjects, type LimitedSubject } from '../ratelimit/admit-subjects.js';
import type { LimitSpec, RateLimiter, RateLimitHeaders } from '../ratelimit/rate-limiter.js';
import type { Store, UsageRecord } from '../../store/store.js';
import type { LineCompletion } from '../../store/batch-store.js';
import type { Principal } from '../accounts/authenticator.js';
import { costMicros, worstCaseMicros, type ModelPrices, type TokenCounts } from '../billing/prices.js';
import { TokenmillError } from '../errors.js';

export interface GateRequest {
  /** The request id (`x-request-id`), also the usage record's id. */
  requestId: string;
  model: string;
  endpoint: string;
  /** Prompt tokens of all prompts. */
  promptTokens: number;
  /** The most tokens all choices together may generate. */
  maxCompletionTokens: number;
  batchId?: string | null;
  /** Price multiplier as a rational, e.g. [1, 2] for batch; default [1, 1]. */
  multiplier?: readonly [number, number];
}

export interface GateOutcome {
  /** What was computed; null when generation never started (nothing is recorded or billed). */
  usage: TokenCounts | null;
  /** `completed`, `cancelled`, `failed`. */
  status: string;
  latencyMs: number;
  ttftMs: number | null;
}

/** An admitted request: rate-limit headers to send, and the one settlement to do when it ends. */
export interface Ticket {
  headers: RateLimitHeaders;
  /** Records usage and settles the reserved funds (or releases them). Call exactly once. */
  settle(outcome: GateOutcome): Promise<void>;
  /**
   * Instead of `settle`, for a batch line: commits the line's result and its usage in one transaction. False when
   * the worker no longer held the line (nothing is billed, the hold is released).
   */
  settleBatchLine(outcome: GateOutcome, line: LineCompletion): Promise<boolean>;
}

export interface RequestGateDeps {
  store: Store;
  limiter: RateLimiter;
  prices: (model: string) => ModelPrices;
  /** Limits of a key that sets none of its own (null fields: unlimited). */
  defaultKeyLimits?: LimitSpec;
  /** ms since epoch. */
  now: () => number;
}

/**
 * Admission and settlement around every inference request: rate limits (requests, tokens, concurrency), then a
 * reservation of the worst-case cost against the account balance and the key's spend limit. At the end the
 * reservation is settled to the real cost with one usage record, in one transaction.
 */
export class RequestGate {
  constructor(private readonly deps: RequestGateDeps) {}

  async admit(principal: Principal, request: GateRequest): Promise<Ticket> {
    if (principal.kind !== 'key') return openTicket();
    const { key, account } = principal;
    const reservedTokens = request.promptTokens + request.maxCompletionTokens;
    const defaults = this.deps.defaultKeyLimits;
    const limits: LimitSpec = {
      rpm: key.rpm ?? defaults?.rpm ?? null,
      tpm: key.tpm ?? defaults?.tpm ?? null,
      maxConcurrency: key.maxConcurrency ?? defaults?.maxConcurrency ?? null,
    };
    const subjects: LimitedSubject[] = [{ subject: `key:${key.id}`, limits }];
    const accountLimits = account.limits;
    if (accountLimits.rpm !== null || accountLimits.tpm !== null || accountLimits.maxConcurrency !== null) {
      subjects.push({ subject: `account:${account.id}`, limits: accountLimits });
    }
    const admission = await admitSubjects(this.deps.limiter, subjects, reservedTokens);
    const prices = this.deps.prices(request.model);
    const multiplier = request.multiplier ?? [1, 1];
    const hold = worstCaseMicros(prices, request.promptTokens, request.maxCompletionTokens, multiplier);
    let result;
    try {
      result = await this.deps.store.reserve({
        requestId: request.requestId,
        accountId: account.id,
        keyId: key.id,
        amountMicros: hold,
        now: Math.floor(this.deps.now() / 1000),
        durable: request.batchId !== undefined && request.batchId !== null,
      });
    } catch (error) {
      await admission.cancel();
      throw error;
    }
    if (result !== 'reserved') {
      await admission.cancel();
      throw fundsError(result, hold);
    }
    const started = this.deps.now();
    let settled = false;
    const settle = async (outcome: GateOutcome, line: LineCompletion | null): Promise<boolean> => {
      if (settled) return false;
      settled = true;
      const usage = outcome.usage;
      // The limiter's slot and token count go back first (the answer is complete), beside the ledger's commit, which
      // may wait for a group commit: a client's next request must not find its previous one still in flight.
      const finished = admission.finish(usage === null ? 0 : usage.promptTokens + usage.completionTokens);
      finished.catch(() => {}); // awaited below; handled now, so that an early failure is no unhandled rejection
      try {
        if (usage === null) {
          await this.deps.store.release(request.requestId);
          return line === null ? true : this.deps.store.completeBatchLine(line, null);
        }
        const record: UsageRecord = {
          id: request.requestId,
          createdAt: Math.floor(started / 1000),
          accountId: account.id,
          keyId: key.id,
          model: request.model,
          endpoint: request.endpoint,
          status: outcome.status,
          promptTokens: usage.promptTokens,
          cachedTokens: usage.cachedTokens,
          cacheWriteTokens: usage.cacheWriteTokens ?? 0,
          completionTokens: usage.completionTokens,
          costMicros: Math.min(costMicros(prices, usage, multiplier), hold),
          latencyMs: Math.round(outcome.latencyMs),
          ttftMs: outcome.ttftMs === null ? null : Math.round(outcome.ttftMs),
          batchId: request.batchId ?? null,
        };
        if (line === null) {
          await this.deps.store.settle(record);
          return true;
        }
        const committed = await this.deps.store.completeBatchLine(line, record);
        if (!committed) await this.deps.store.release(request.requestId);
        return committed;
      } finally {
        await finished;
      }
    };
    return {
      headers: admission.headers,
      settle: async (outcome) => {
        await settle(outcome, null);
      },
      settleBatchLine: (outcome, line) => settle(outcome, line),
    };
  }
}

/** Nothing to bill (not an API key). Batch workers commit such lines themselves and never call settleBatchLine. */
function openTicket(): Ticket {
  return { headers: {}, settle: async () => {}, settleBatchLine: async () => false };
}

function fundsError(result: 'insufficient_balance' | 'key_spend_limit' | 'account_inactive', hold: number): TokenmillError {
  switch (result) {
    case 'insufficient_balance':
      return new TokenmillError(
        'insufficient_quota',
        'insufficient_quota',
        `You exceeded your current quota: this request may cost up to ${hold} micro-USD and the account balance does not cover it. Add credits or lower max_tokens.`,
      );
    case 'key_spend_limit':
      return new TokenmillError(
        'insufficient_quota',
        'insufficient_quota',
        `This API key reached its spend limit: this request may cost up to ${hold} micro-USD. Raise the key's limit or lower max_tokens.`,
      );
    case 'account_inactive':
      return new TokenmillError('permission', 'account_inactive', 'The account is not active.');
  }
}

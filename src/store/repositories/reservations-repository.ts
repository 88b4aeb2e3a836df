import type { Kysely, Transaction } from 'kysely';
import type { ReservationRequest, ReservationResult, UsageRecord } from '../store.js';
import type { Tables } from '../tables.js';
import { newId } from '../new-id.js';
import { assertSafeInteger, toSafeInteger } from '../to-safe-integer.js';

/** Thrown inside a transaction to roll it back and return `result` from it. */
class RollbackWith {
  constructor(readonly result: ReservationResult) {}
}

/**
 * Holds, settles and releases request funds. Invariants, for every account and key:
 *   balance_micros = credits - settled usage - open reservations >= 0
 *   spent_micros   = settled usage with the key + its open reservations <= spend_limit_micros (when set)
 * Concurrency: every change is a conditional UPDATE (the row lock makes it re-check the condition against the latest
 * committed row, so READ COMMITTED suffices on PostgreSQL). Transactions lock rows in one order, reservation ->
 * account -> key, so they cannot deadlock with each other.
 */
export class ReservationsRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  async reserve(request: ReservationRequest): Promise<ReservationResult> {
    const amount = request.amountMicros;
    assertSafeInteger(amount, 'amountMicros');
    try {
      return await this.db.transaction().execute(async (trx) => {
        const debited = await trx
          .updateTable('accounts')
          .set((eb) => ({ balance_micros: eb('balance_micros', '-', amount).$castTo<number>() }))
          .where('id', '=', request.accountId)
          .where('status', '=', 'active')
          .where('balance_micros', '>=', amount)
          .executeTakeFirst();
        if (debited.numUpdatedRows === 0n) {
          // Nothing changed; find out why.
          const account = await trx.selectFrom('accounts').select('status').where('id', '=', request.accountId).executeTakeFirst();
          return account?.status === 'active' ? 'insufficient_balance' : 'account_inactive';
        }
        if (request.keyId !== null) await this.chargeKey(trx, request.accountId, request.keyId, amount);
        await trx
          .insertInto('reservations')
          .values({
            request_id: request.requestId,
            account_id: request.accountId,
            key_id: request.keyId,
            amount_micros: amount,
            created_at: request.now,
          })
          .execute();
        return 'reserved';
      });
    } catch (error) {
      if (error instanceof RollbackWith) return error.result;
      throw error;
    }
  }

  /** Adds `amount` to the key's spent, unless that passes its spend limit (then rolls the reservation back). */
  private async chargeKey(trx: Transaction<Tables>, accountId: string, keyId: string, amount: number): Promise<void> {
    const charged = await trx
      .updateTable('api_keys')
      .set((eb) => ({ spent_micros: eb('spent_micros', '+', amount).$castTo<number>() }))
      .where('id', '=', keyId)
      .where('account_id', '=', accountId)
      .where((eb) =>
        eb.or([eb('spend_limit_micros', 'is', null), eb(eb('spent_micros', '+', amount), '<=', eb.ref('spend_limit_micros'))]),
      )
      .executeTakeFirst();
    if (charged.numUpdatedRows > 0n) return;
    const key = await trx.selectFrom('api_keys').select('id').where('id', '=', keyId).where('account_id', '=', accountId).executeTakeFirst();
    if (!key) throw new Error(`reserve: account ${accountId} has no API key ${keyId}`);
    throw new RollbackWith('key_spend_limit');
  }

  /**
   * Ends the reservation `record.id` with its real cost. No reservation (already settled or released, or never
   * made): does nothing. A cost above the hold, or another account than the hold's, is a caller bug: throws and
   * changes nothing.
   */
  async settle(record: UsageRecord): Promise<void> {
    await this.db.transaction().execute((trx) => this.settleIn(trx, record));
  }

  /** `settle` inside the caller's transaction (a batch line commits its result and its usage together). */
  async settleIn(trx: Transaction<Tables>, record: UsageRecord): Promise<void> {
    assertSafeInteger(record.costMicros, 'costMicros');
    // Deleting first locks the reservation: a concurrent settle or release of the same request waits, then finds none.
    const reservation = await trx.deleteFrom('reservations').where('request_id', '=', record.id).returningAll().executeTakeFirst();
    if (!reservation) return;
    const held = toSafeInteger(reservation.amount_micros);
    if (record.costMicros > held) {
      throw new Error(`settle ${record.id}: cost ${record.costMicros} micro-USD exceeds the ${held} reserved`);
    }
    if (record.accountId !== reservation.account_id) {
      throw new Error(`settle ${record.id}: account ${record.accountId} is not the reservation's ${reservation.account_id}`);
    }
    await this.returnFunds(trx, reservation.account_id, reservation.key_id, held - record.costMicros);
    await trx
      .insertInto('usage_records')
      .values({
        id: record.id,
        created_at: record.createdAt,
        account_id: record.accountId,
        key_id: record.keyId,
        model: record.model,
        endpoint: record.endpoint,
        status: record.status,
        prompt_tokens: record.promptTokens,
        cached_tokens: record.cachedTokens,
        cache_write_tokens: record.cacheWriteTokens ?? 0,
        completion_tokens: record.completionTokens,
        cost_micros: record.costMicros,
        latency_ms: record.latencyMs,
        ttft_ms: record.ttftMs,
        batch_id: record.batchId,
      })
      .execute();
    await trx
      .insertInto('ledger_entries')
      .values({
        id: newId('led'),
        account_id: record.accountId,
        amount_micros: -record.costMicros,
        kind: 'usage',
        request_id: record.id,
        note: null,
        created_at: record.createdAt,
      })
      .execute();
  }

  /** Ends a reservation without usage; false when there was none. */
  async release(requestId: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const reservation = await trx.deleteFrom('reservations').where('request_id', '=', requestId).returningAll().executeTakeFirst();
      if (!reservation) return false;
      await this.returnFunds(trx, reservation.account_id, reservation.key_id, toSafeInteger(reservation.amount_micros));
      return true;
    });
  }

  /** Releases reservations created before `before` (unix seconds), one transaction each; returns how many. */
  async releaseStale(before: number): Promise<number> {
    const stale = await this.db.selectFrom('reservations').select('request_id').where('created_at', '<', before).execute();
    let released = 0;
    for (const { request_id } of stale) {
      if (await this.release(request_id)) released += 1;
    }
    return released;
  }

  /** Gives `amount` micro-USD of a hold back: to the account's balance and off the key's spent. */
  private async returnFunds(trx: Transaction<Tables>, accountId: string, keyId: string | null, amount: number): Promise<void> {
    await trx
      .updateTable('accounts')
      .set((eb) => ({ balance_micros: eb('balance_micros', '+', amount).$castTo<number>() }))
      .where('id', '=', accountId)
      .execute();
    if (keyId === null) return;
    await trx
      .updateTable('api_keys')
      .set((eb) => ({ spent_micros: eb('spent_micros', '-', amount).$castTo<number>() }))
      .where('id', '=', keyId)
      .execute();
  }
}

import type BetterSqlite3 from 'better-sqlite3';
import { newId } from './new-id.js';
import type { UsageRecord } from './store.js';
import { toSafeInteger } from './to-safe-integer.js';

/** A reservation row as `delete ... returning *` gives it. */
export interface ReservationRow {
  request_id: string;
  account_id: string;
  key_id: string | null;
  amount_micros: number;
  created_at: number;
}

/** Prepared statements that put funds back and take a reservation, shared by settlement and release. */
export interface FundsStatements {
  /** Deletes the request's reservation and returns it (undefined when there was none). */
  takeReservation(requestId: string): ReservationRow | undefined;
  /** Credits the account (and takes the amount off the key's spent total). */
  returnFunds(account: string, key: string | null, amount: number): void;
}

export function prepareFunds(database: BetterSqlite3.Database): FundsStatements {
  const takeReservation = database.prepare('delete from reservations where request_id = ? returning *');
  const creditAccount = database.prepare('update accounts set balance_micros = balance_micros + @amount where id = @account');
  const uncheckKey = database.prepare('update api_keys set spent_micros = spent_micros - @amount where id = @key');
  return {
    takeReservation: (requestId) => takeReservation.get(requestId) as ReservationRow | undefined,
    returnFunds: (account, key, amount) => {
      creditAccount.run({ account, amount });
      if (key !== null) uncheckKey.run({ key, amount });
    },
  };
}

/** One settlement of a group: a record, and the hold it settles when that hold is not a reservation row. */
export interface SettlementItem {
  record: UsageRecord;
  /**
   * Null: the hold is a row of `reservations` (its amount was taken off the balance and added to the key's spent
   * when it was made): the settlement takes the row and returns the unused part. Set: the hold lived in the serving
   * process's memory (decision 0021) and nothing was taken yet: the settlement charges the cost alone.
   */
  heldInMemory: { amountMicros: number; keyId: string | null } | null;
}

/**
 * Settles items in one IMMEDIATE transaction, each in a savepoint of its own (decision 0017): per item null, or the
 * error it threw (its savepoint rolled back, the others committed). A reservation row's settlement takes the row,
 * returns the unused part of the hold, and writes the usage record and its ledger entry; a memory hold's charges the
 * cost to the account and the key and writes the same two rows. Same semantics as ReservationsRepository.settle (the
 * store contract suite runs both).
 */
export function prepareSettlement(database: BetterSqlite3.Database): (items: SettlementItem[]) => unknown[] {
  const funds = prepareFunds(database);
  const insertUsage = database.prepare(
    `insert into usage_records (id, created_at, account_id, key_id, model, endpoint, status, prompt_tokens,
                                cached_tokens, completion_tokens, cost_micros, latency_ms, ttft_ms, batch_id,
                                cache_write_tokens)
     values (@id, @createdAt, @accountId, @keyId, @model, @endpoint, @status, @promptTokens,
             @cachedTokens, @completionTokens, @costMicros, @latencyMs, @ttftMs, @batchId, @cacheWriteTokens)`,
  );
  const insertLedger = database.prepare(
    `insert into ledger_entries (id, account_id, amount_micros, kind, request_id, note, created_at)
     values (?, ?, ?, 'usage', ?, null, ?)`,
  );
  const chargeAccount = database.prepare('update accounts set balance_micros = balance_micros - @amount where id = @account');
  const chargeKey = database.prepare('update api_keys set spent_micros = spent_micros + @amount where id = @key');
  const record = (usage: UsageRecord) => {
    insertUsage.run({ ...usage, cacheWriteTokens: usage.cacheWriteTokens ?? 0 });
    insertLedger.run(newId('led'), usage.accountId, -usage.costMicros, usage.id, usage.createdAt);
  };
  const settleOne = database.transaction(({ record: usage, heldInMemory }: SettlementItem) => {
    if (heldInMemory !== null) {
      // The serving process checked the cost against the hold and the hold against the balance (decision 0021).
      if (usage.costMicros > heldInMemory.amountMicros) {
        throw new Error(`settle ${usage.id}: cost ${usage.costMicros} micro-USD exceeds the ${heldInMemory.amountMicros} reserved`);
      }
      chargeAccount.run({ account: usage.accountId, amount: usage.costMicros });
      if (heldInMemory.keyId !== null) chargeKey.run({ key: heldInMemory.keyId, amount: usage.costMicros });
      record(usage);
      return;
    }
    const reservation = funds.takeReservation(usage.id);
    if (reservation === undefined) return;
    const held = toSafeInteger(reservation.amount_micros);
    if (usage.costMicros > held) {
      throw new Error(`settle ${usage.id}: cost ${usage.costMicros} micro-USD exceeds the ${held} reserved`);
    }
    if (usage.accountId !== reservation.account_id) {
      throw new Error(`settle ${usage.id}: account ${usage.accountId} is not the reservation's ${reservation.account_id}`);
    }
    funds.returnFunds(reservation.account_id, reservation.key_id, held - usage.costMicros);
    record(usage);
  });
  // Inside the outer transaction each settleOne runs as a savepoint: an item that fails rolls back alone.
  return database
    .transaction((items: SettlementItem[]) =>
      items.map((item) => {
        try {
          settleOne(item);
          return null;
        } catch (error) {
          return error;
        }
      }),
    )
    .immediate.bind(null) as (items: SettlementItem[]) => unknown[];
}

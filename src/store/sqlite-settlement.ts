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

/**
 * Settles records in one IMMEDIATE transaction, each in a savepoint of its own (decision 0017): per record null, or
 * the error it threw (its savepoint rolled back, the others committed). A record's settlement takes its reservation,
 * returns the unused part of the hold, and writes its usage record and ledger entry. Same semantics as
 * ReservationsRepository.settle (the store contract suite runs both).
 */
export function prepareSettlement(database: BetterSqlite3.Database): (records: UsageRecord[]) => unknown[] {
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
  const settleOne = database.transaction((record: UsageRecord) => {
    const reservation = funds.takeReservation(record.id);
    if (reservation === undefined) return;
    const held = toSafeInteger(reservation.amount_micros);
    if (record.costMicros > held) {
      throw new Error(`settle ${record.id}: cost ${record.costMicros} micro-USD exceeds the ${held} reserved`);
    }
    if (record.accountId !== reservation.account_id) {
      throw new Error(`settle ${record.id}: account ${record.accountId} is not the reservation's ${reservation.account_id}`);
    }
    funds.returnFunds(reservation.account_id, reservation.key_id, held - record.costMicros);
    insertUsage.run({ ...record, cacheWriteTokens: record.cacheWriteTokens ?? 0 });
    insertLedger.run(newId('led'), record.accountId, -record.costMicros, record.id, record.createdAt);
  });
  // Inside the outer transaction each settleOne runs as a savepoint: a record that fails rolls back alone.
  return database
    .transaction((records: UsageRecord[]) =>
      records.map((record) => {
        try {
          settleOne(record);
          return null;
        } catch (error) {
          return error;
        }
      }),
    )
    .immediate.bind(null) as (records: UsageRecord[]) => unknown[];
}

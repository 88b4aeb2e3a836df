import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { rowToKeyWithAccount, type KeyWithAccountRow } from './repositories/keys-repository.js';
import { SettlementWorker } from './settlement-worker.js';
import { prepareFunds } from './sqlite-settlement.js';
import type { Account, ApiKey, ReservationRequest, ReservationResult, UsageRecord } from './store.js';
import type { Tables } from './tables.js';
import { assertSafeInteger, toSafeInteger } from './to-safe-integer.js';

/**
 * The request path's store operations on SQLite, as prepared better-sqlite3 statements run synchronously (decision
 * 0010). Kysely costs ~65 us per statement here (building, compiling and its async driver), so a reservation took
 * ~420 us and a settlement ~730 us of main-thread time; these take a few tens of microseconds. Same semantics and
 * invariants as ReservationsRepository (the store contract suite runs on both).
 *
 * Writes run inside Kysely's connection lock, so they never interleave with a Kysely transaction on the same
 * connection (which would make ours a savepoint of theirs).
 */
export class SqliteHotPath {
  readonly #kysely: Kysely<Tables>;
  readonly #database: BetterSqlite3.Database;
  readonly #keyWithAccount: BetterSqlite3.Statement<[string]>;
  readonly #reserve: (request: ReservationRequest) => ReservationResult;
  /** Commits groups of settlements on a thread of its own. */
  readonly #settlements: SettlementWorker;
  /** The group the settlement thread is committing, if any. */
  #committing: Promise<void> | null = null;
  /** Settlements waiting for the next group commit. */
  #pendingSettles: Array<{ record: UsageRecord; resolve: () => void; reject: (error: unknown) => void }> = [];
  #settleTimer: NodeJS.Timeout | null = null;
  readonly #release: (requestId: string) => boolean;

  /** `busyTimeoutMs`: the settlement thread's connection waits this long for a write lock held elsewhere. */
  constructor(database: BetterSqlite3.Database, kysely: Kysely<Tables>, busyTimeoutMs: number) {
    this.#kysely = kysely;
    this.#database = database;
    this.#keyWithAccount = database.prepare(
      `select k.*, a.name as account_name, a.status as account_status, a.balance_micros as account_balance_micros,
              a.created_at as account_created_at, a.rpm as account_rpm, a.tpm as account_tpm,
              a.max_concurrency as account_max_concurrency
         from api_keys k join accounts a on a.id = k.account_id
        where k.secret_hash = ?`,
    );
    const debitAccount = database.prepare(
      `update accounts set balance_micros = balance_micros - @amount
        where id = @account and status = 'active' and balance_micros >= @amount`,
    );
    const accountStatus = database.prepare('select status from accounts where id = ?').pluck();
    const chargeKey = database.prepare(
      `update api_keys set spent_micros = spent_micros + @amount
        where id = @key and account_id = @account
          and (spend_limit_micros is null or spent_micros + @amount <= spend_limit_micros)`,
    );
    const keyExists = database.prepare('select 1 from api_keys where id = ? and account_id = ?').pluck();
    const insertReservation = database.prepare(
      `insert into reservations (request_id, account_id, key_id, amount_micros, created_at)
       values (@request, @account, @key, @amount, @now)`,
    );
    const funds = prepareFunds(database);

    const reserve = database.transaction((request: ReservationRequest): ReservationResult => {
      const amount = request.amountMicros;
      const params = { account: request.accountId, key: request.keyId, amount };
      if (debitAccount.run(params).changes === 0) {
        return accountStatus.get(request.accountId) === 'active' ? 'insufficient_balance' : 'account_inactive';
      }
      if (request.keyId !== null && chargeKey.run(params).changes === 0) {
        if (keyExists.get(request.keyId, request.accountId) === undefined) {
          throw new Error(`reserve: account ${request.accountId} has no API key ${request.keyId}`);
        }
        throw new RollbackWith('key_spend_limit');
      }
      insertReservation.run({ ...params, request: request.requestId, now: request.now });
      return 'reserved';
    });
    this.#reserve = (request) => {
      try {
        return reserve.immediate(request);
      } catch (error) {
        if (error instanceof RollbackWith) return error.result;
        throw error;
      }
    };

    this.#settlements = new SettlementWorker(database.name, busyTimeoutMs);
    this.#settlements.start();

    this.#release = database
      .transaction((requestId: string): boolean => {
        const reservation = funds.takeReservation(requestId);
        if (reservation === undefined) return false;
        funds.returnFunds(reservation.account_id, reservation.key_id, toSafeInteger(reservation.amount_micros));
        return true;
      })
      .immediate.bind(null) as (requestId: string) => boolean;
  }

  findKeyWithAccountByHash(secretHash: string): { key: ApiKey; account: Account } | null {
    const row = this.#keyWithAccount.get(secretHash) as KeyWithAccountRow | undefined;
    if (row === undefined) return null;
    return rowToKeyWithAccount(row);
  }

  async reserve(request: ReservationRequest): Promise<ReservationResult> {
    assertSafeInteger(request.amountMicros, 'amountMicros');
    return this.#locked(() => this.#reserve(request));
  }

  /**
   * Settles a reservation. Settlements are group-committed (decision 0017): up to SETTLE_DELAY_MS later, with those
   * that came meanwhile (at most SETTLE_BATCH), in one transaction on the settlement thread (decision 0019). The
   * promise resolves once the record is committed.
   */
  settle(record: UsageRecord): Promise<void> {
    assertSafeInteger(record.costMicros, 'costMicros');
    return new Promise((resolve, reject) => {
      this.#pendingSettles.push({ record, resolve, reject });
      if (this.#pendingSettles.length >= SETTLE_BATCH) void this.flush();
      else this.#settleTimer ??= setTimeout(() => void this.flush(), SETTLE_DELAY_MS);
    });
  }

  /** Commits the settlements that wait now, after the group on the thread (the store calls it before closing). */
  async flush(): Promise<void> {
    if (this.#settleTimer !== null) clearTimeout(this.#settleTimer);
    this.#settleTimer = null;
    // One group at a time: the thread holds the write lock while it commits, and this thread's writes wait for it.
    while (this.#committing !== null) await this.#committing;
    const batch = this.#pendingSettles.splice(0);
    if (batch.length === 0) return;
    const committed = this.#commit(batch);
    this.#committing = committed;
    await committed;
    this.#committing = null;
  }

  async #commit(batch: Array<{ record: UsageRecord; resolve: () => void; reject: (error: unknown) => void }>): Promise<void> {
    let results: unknown[];
    try {
      results = await this.#settlements.settle(batch.map((item) => item.record));
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, index) => (results[index] === null ? item.resolve() : item.reject(results[index])));
  }

  release(requestId: string): Promise<boolean> {
    return this.#locked(() => this.#release(requestId));
  }

  /** Ends the settlement thread (after `flush`). */
  close(): Promise<void> {
    return this.#settlements.close();
  }

  /**
   * Runs `work` when no other write holds the database: with the write lock shared with the settlement thread (after
   * its group is committed, if it holds the lock now: SQLite's busy handler would otherwise put this thread to sleep
   * for a millisecond or more), and outside any Kysely transaction: at once when none is open on the connection
   * (`work` is synchronous, so none can begin meanwhile), else once Kysely's connection lock, which a transaction
   * holds, is free.
   */
  async #locked<T>(work: () => T): Promise<T> {
    if (this.#database.inTransaction) return this.#kysely.connection().execute(() => this.#locked(work));
    while (!this.#settlements.tryLock()) await (this.#committing ?? new Promise((resolve) => setImmediate(resolve)));
    try {
      return work();
    } finally {
      this.#settlements.unlock();
    }
  }
}

/**
 * How long a settlement may wait for others to share its commit, ms. A sequential client's next request then no
 * longer waits behind the previous one's commit, and a burst pays for one commit; a crash loses at most this much of
 * usage (those requests' holds are released at the next start, never charged twice).
 */
const SETTLE_DELAY_MS = 5;
/** The most settlements committed together (a full batch commits at once). */
const SETTLE_BATCH = 64;

/** Thrown inside a transaction to roll it back and return `result` from it. */
class RollbackWith {
  constructor(readonly result: ReservationResult) {}
}

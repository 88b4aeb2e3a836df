import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { rowToKeyWithAccount, type KeyWithAccountRow } from './repositories/keys-repository.js';
import { SettlementWorker } from './settlement-worker.js';
import { prepareFunds, type SettlementItem } from './sqlite-settlement.js';
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
 *
 * With `memoryHolds` (the serving process holds the instance lock: it is the only one using this database), an
 * interactive request's hold is kept here rather than written as a reservation row (decision 0021): the reservation
 * is a read and a comparison, and its settlement charges the cost in the group commit. A batch line's hold (`durable`)
 * stays a row: its settlement commits with the line. What the database shows for an account or key is adjusted by
 * the holds here (`heldByAccount`, `heldByKey`), so the store's contract does not change.
 *
 * With `memoryHolds` the committed funds that reservations check (an account's status and balance, a key's spent
 * and limit) are kept as read until the database changes (decision 0022): each reservation first asks SQLite whether
 * anything was written since, on this connection (`total_changes()`: Kysely's writes, row holds, releases) or on any
 * other (`PRAGMA data_version`: the settlement thread's group commits, or someone else's edit), and reads again if
 * so. Asking costs a fraction of the read it saves (a join, after each commit on another connection a fresh look at
 * the WAL); between two group commits, reservations read nothing.
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
  #pendingSettles: PendingSettle[] = [];
  /** Interactive holds kept in memory, by request id (only with `memoryHolds`). */
  readonly #holds = new Map<string, MemoryHold>();
  readonly #heldByAccount = new Map<string, number>();
  readonly #heldByKey = new Map<string, number>();
  readonly #memoryHolds: boolean;
  readonly #funds: BetterSqlite3.Statement<[{ account: string; key: string | null }]>;
  #settleTimer: NodeJS.Timeout | null = null;
  readonly #release: (requestId: string) => boolean;
  /** Committed funds of accounts and keys (only with `memoryHolds`), kept while the database does not change. */
  readonly #accountFunds = new Map<string, AccountFunds>();
  readonly #keyFunds = new Map<string, KeyFunds>();
  /** This connection's `total_changes()` and `data_version` when the kept funds were current. */
  #changesSeen = -1;
  #versionSeen = -1;
  readonly #totalChanges: BetterSqlite3.Statement<[]>;
  readonly #dataVersion: BetterSqlite3.Statement<[]>;

  /**
   * `busyTimeoutMs`: the settlement thread's connection waits this long for a write lock held elsewhere.
   * `memoryHolds`: keep interactive holds in memory (only when this process is the database's only user).
   */
  constructor(database: BetterSqlite3.Database, kysely: Kysely<Tables>, busyTimeoutMs: number, memoryHolds = false) {
    this.#kysely = kysely;
    this.#database = database;
    this.#memoryHolds = memoryHolds;
    this.#funds = database.prepare(
      `select a.status, a.balance_micros, k.account_id as key_account_id, k.spent_micros, k.spend_limit_micros
         from accounts a left join api_keys k on k.id = @key
        where a.id = @account`,
    );
    this.#totalChanges = database.prepare('select total_changes()').pluck();
    this.#dataVersion = database.prepare('pragma data_version').pluck();
    this.#keyWithAccount = database.prepare(
      `select k.*, a.name as account_name, a.status as account_status, a.balance_micros as account_balance_micros,
              a.created_at as account_created_at, a.rpm as account_rpm, a.tpm as account_tpm,
              a.max_concurrency as account_max_concurrency
         from api_keys k join accounts a on a.id = k.account_id
        where k.secret_hash = ?`,
    );
    // `@held`: what this process holds in memory for the account (or key); a row hold may not take it (decision 0021).
    const debitAccount = database.prepare(
      `update accounts set balance_micros = balance_micros - @amount
        where id = @account and status = 'active' and balance_micros - @held >= @amount`,
    );
    const accountStatus = database.prepare('select status from accounts where id = ?').pluck();
    const chargeKey = database.prepare(
      `update api_keys set spent_micros = spent_micros + @amount
        where id = @key and account_id = @account
          and (spend_limit_micros is null or spent_micros + @keyHeld + @amount <= spend_limit_micros)`,
    );
    const keyExists = database.prepare('select 1 from api_keys where id = ? and account_id = ?').pluck();
    const insertReservation = database.prepare(
      `insert into reservations (request_id, account_id, key_id, amount_micros, created_at)
       values (@request, @account, @key, @amount, @now)`,
    );
    const funds = prepareFunds(database);

    const reserve = database.transaction((request: ReservationRequest): ReservationResult => {
      const amount = request.amountMicros;
      const params = {
        account: request.accountId,
        key: request.keyId,
        amount,
        held: this.heldByAccount(request.accountId),
        keyHeld: request.keyId === null ? 0 : this.heldByKey(request.keyId),
      };
      if (debitAccount.run(params).changes === 0) {
        return accountStatus.get(request.accountId) === 'active' ? 'insufficient_balance' : 'account_inactive';
      }
      if (request.keyId !== null && chargeKey.run(params).changes === 0) {
        if (keyExists.get(request.keyId, request.accountId) === undefined) {
          throw new Error(`reserve: account ${request.accountId} has no API key ${request.keyId}`);
        }
        throw new RollbackWith('key_spend_limit');
      }
      insertReservation.run({ account: params.account, key: params.key, amount, request: request.requestId, now: request.now });
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
    if (!this.#memoryHolds || request.durable === true) {
      if (this.#holds.has(request.requestId)) throw new Error(`reserve: request ${request.requestId} already holds funds`);
      return this.#locked(() => this.#reserve(request));
    }
    // Not between the statements of a Kysely transaction (a credit change reads the holds inside its own): after it.
    // No write lock: nothing is written, and a read never waits for the settlement thread's commit (WAL).
    if (this.#database.inTransaction) return this.#kysely.connection().execute(async () => this.#holdInMemory(request));
    return this.#holdInMemory(request);
  }

  /** Whether the request's hold is one of the memory holds (not a reservation row). */
  holdsInMemory(requestId: string): boolean {
    return this.#holds.has(requestId);
  }

  /** What this process holds in memory for the account, micro-USD (0 without memory holds). */
  heldByAccount(accountId: string): number {
    return this.#heldByAccount.get(accountId) ?? 0;
  }

  /** What this process holds in memory against the key's spend limit, micro-USD. */
  heldByKey(keyId: string): number {
    return this.#heldByKey.get(keyId) ?? 0;
  }

  /**
   * Releases the memory holds made before `before` (unix seconds) that no settlement has taken; their count. (At
   * start-up there are none; the contract's releaseStale covers both kinds.)
   */
  releaseStaleHolds(before: number): number {
    let released = 0;
    for (const [requestId, hold] of this.#holds) {
      if (hold.createdAt < before && hold.settling === null) {
        this.#dropHold(requestId, hold);
        released++;
      }
    }
    return released;
  }

  /**
   * The checks of the reservation transaction, against the committed balance and spent minus what this process
   * holds, in the same order (account, then key) and with the same answers; then the hold, in memory.
   */
  #holdInMemory(request: ReservationRequest): ReservationResult {
    if (this.#holds.has(request.requestId)) throw new Error(`reserve: request ${request.requestId} already holds funds`);
    const funds = this.#committedFunds(request.accountId, request.keyId);
    const amount = request.amountMicros;
    if (funds === null || funds.account.status !== 'active') return 'account_inactive';
    if (funds.account.balance - this.heldByAccount(request.accountId) < amount) return 'insufficient_balance';
    if (request.keyId !== null) {
      const key = funds.key;
      if (key === null || key.accountId !== request.accountId) {
        throw new Error(`reserve: account ${request.accountId} has no API key ${request.keyId}`);
      }
      if (key.limit !== null && key.spent + this.heldByKey(request.keyId) + amount > key.limit) return 'key_spend_limit';
    }
    this.#holds.set(request.requestId, { accountId: request.accountId, keyId: request.keyId, amount, createdAt: request.now, settling: null });
    this.#heldByAccount.set(request.accountId, this.heldByAccount(request.accountId) + amount);
    if (request.keyId !== null) this.#heldByKey.set(request.keyId, this.heldByKey(request.keyId) + amount);
    return 'reserved';
  }

  /**
   * The account's committed funds and the key's (null when the account does not exist; the key's null when it does
   * not exist): as kept, when nothing was written since they were read, else read now (and kept). A commit that
   * lands after the check changes `data_version` again, so a read that saw it is dropped at the next check.
   */
  #committedFunds(accountId: string, keyId: string | null): { account: AccountFunds; key: KeyFunds | null } | null {
    const changes = this.#totalChanges.get() as number;
    const version = this.#dataVersion.get() as number;
    if (changes !== this.#changesSeen || version !== this.#versionSeen) {
      this.#accountFunds.clear();
      this.#keyFunds.clear();
      this.#changesSeen = changes;
      this.#versionSeen = version;
    }
    const account = this.#accountFunds.get(accountId);
    const key = keyId === null ? null : this.#keyFunds.get(keyId);
    if (account !== undefined && key !== undefined) return { account, key };
    const row = this.#funds.get({ account: accountId, key: keyId }) as FundsRow | undefined;
    if (row === undefined) return null;
    const read = {
      account: { status: row.status, balance: toSafeInteger(row.balance_micros) },
      key:
        keyId === null || row.key_account_id === null
          ? null
          : { accountId: row.key_account_id, spent: toSafeInteger(row.spent_micros!), limit: row.spend_limit_micros === null ? null : toSafeInteger(row.spend_limit_micros) },
    };
    this.#accountFunds.set(accountId, read.account);
    if (keyId !== null && read.key !== null) this.#keyFunds.set(keyId, read.key);
    return read;
  }

  #dropHold(requestId: string, hold: MemoryHold): void {
    this.#holds.delete(requestId);
    const account = this.heldByAccount(hold.accountId) - hold.amount;
    if (account === 0) this.#heldByAccount.delete(hold.accountId);
    else this.#heldByAccount.set(hold.accountId, account);
    if (hold.keyId !== null) {
      const key = this.heldByKey(hold.keyId) - hold.amount;
      if (key === 0) this.#heldByKey.delete(hold.keyId);
      else this.#heldByKey.set(hold.keyId, key);
    }
  }

  /**
   * Settles a reservation. Settlements are group-committed (decision 0017): up to SETTLE_DELAY_MS later, with those
   * that came meanwhile (at most SETTLE_BATCH), in one transaction on the settlement thread (decision 0019). The
   * promise resolves once the record is committed.
   */
  settle(record: UsageRecord): Promise<void> {
    assertSafeInteger(record.costMicros, 'costMicros');
    const hold = this.#holds.get(record.id);
    if (hold === undefined) return this.#queue({ record, heldInMemory: null }, null);
    // A memory hold is settled once: a second settle of the same request waits for the first (as a row's would find
    // nothing left to take).
    if (hold.settling !== null) return hold.settling.then(() => undefined);
    if (record.accountId !== hold.accountId) {
      return Promise.reject(new Error(`settle ${record.id}: account ${record.accountId} is not the reservation's ${hold.accountId}`));
    }
    if (record.costMicros > hold.amount) {
      // Refused here, as the group commit would: the hold stays.
      return Promise.reject(new Error(`settle ${record.id}: cost ${record.costMicros} micro-USD exceeds the ${hold.amount} reserved`));
    }
    const settling = this.#queue({ record, heldInMemory: { amountMicros: hold.amount, keyId: hold.keyId } }, hold);
    hold.settling = settling;
    return settling;
  }

  /**
   * Queues one settlement for the next group commit (decision 0017): up to SETTLE_DELAY_MS later, with those that came
   * meanwhile (at most SETTLE_BATCH), in one transaction on the settlement thread (decision 0019). The promise
   * resolves once it is committed; then a memory hold it settles is gone (until then it still counts, so the funds
   * it charges are never counted as free).
   */
  #queue(item: SettlementItem, hold: MemoryHold | null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pendingSettles.push({ item, hold, resolve, reject });
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

  async #commit(batch: PendingSettle[]): Promise<void> {
    let results: unknown[];
    try {
      results = await this.#settlements.settle(batch.map((pending) => pending.item));
    } catch (error) {
      for (const pending of batch) this.#failed(pending, error);
      return;
    }
    batch.forEach((pending, index) => {
      if (results[index] !== null) {
        this.#failed(pending, results[index]);
        return;
      }
      if (pending.hold !== null) this.#dropHold(pending.item.record.id, pending.hold);
      pending.resolve();
    });
  }

  /** A settlement that did not commit: its memory hold stays (as a row hold would), free to be settled again. */
  #failed(pending: PendingSettle, error: unknown): void {
    if (pending.hold !== null) pending.hold.settling = null;
    pending.reject(error);
  }

  release(requestId: string): Promise<boolean> {
    const hold = this.#holds.get(requestId);
    if (hold !== undefined) {
      // Being settled: the settlement decides (a row's release after its settlement finds nothing either).
      if (hold.settling !== null) return Promise.resolve(false);
      this.#dropHold(requestId, hold);
      return Promise.resolve(true);
    }
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

interface MemoryHold {
  accountId: string;
  keyId: string | null;
  amount: number;
  /** Unix seconds (the reservation's `now`). */
  createdAt: number;
  /** The settlement under way, if any. */
  settling: Promise<void> | null;
}

interface PendingSettle {
  item: SettlementItem;
  /** The memory hold it settles, dropped once committed. */
  hold: MemoryHold | null;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** An account's committed funds (status and balance as the database has them, before memory holds). */
interface AccountFunds {
  status: string;
  balance: number;
}

/** A key's committed spending (spent before memory holds, its limit). */
interface KeyFunds {
  accountId: string;
  spent: number;
  limit: number | null;
}

interface FundsRow {
  status: string;
  balance_micros: number | bigint;
  key_account_id: string | null;
  spent_micros: number | bigint | null;
  spend_limit_micros: number | bigint | null;
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

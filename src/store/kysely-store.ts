import { Migrator, type Kysely } from 'kysely';
import { allMigrations } from './migrations/all-migrations.js';
import type { Batch, ClaimedLine, LineCompletion, NewBatch, StoredFile, UnansweredLine } from './batch-store.js';
import { AccountsRepository } from './repositories/accounts-repository.js';
import { BatchesRepository } from './repositories/batches-repository.js';
import { FilesRepository } from './repositories/files-repository.js';
import { KeysRepository } from './repositories/keys-repository.js';
import { ReservationsRepository } from './repositories/reservations-repository.js';
import { SettingsRepository } from './repositories/settings-repository.js';
import { UsageRepository } from './repositories/usage-repository.js';
import type { SqlDialect } from './sql-dialect.js';

/** The request path's store operations done faster than through the generic repositories (decision 0010). */
export interface HotPath {
  reserve(request: ReservationRequest): Promise<ReservationResult>;
  settle(record: UsageRecord): Promise<void>;
  release(requestId: string): Promise<boolean>;
  /** Absent: the repository's query. */
  findKeyWithAccountByHash?(secretHash: string): { key: ApiKey; account: Account } | null;
  /** Commits what waits to be committed (group commit); called before the store closes. */
  flush?(): Promise<void>;
  /** What it holds in memory for the account / against the key (decision 0021); absent: nothing is. */
  heldByAccount?(accountId: string): number;
  heldByKey?(keyId: string): number;
  /** Releases memory holds made before `before` (unix seconds); their count. */
  releaseStaleHolds?(before: number): number;
  /** Whether the request's hold is in memory (not a row). */
  holdsInMemory?(requestId: string): boolean;
  /** Releases what it holds (a thread), after `flush`. */
  close?(): Promise<void>;
}
import type {
  AccountLimits,
  Account,
  ApiKey,
  NewApiKey,
  ReservationRequest,
  ReservationResult,
  Store,
  UsageGroupBy,
  UsageRecord,
  UsageSummaryRow,
} from './store.js';
import type { Tables } from './tables.js';

/** The Store on Kysely, one implementation for SQLite and PostgreSQL; the repositories hold the queries. */
export class KyselyStore implements Store {
  readonly #db: Kysely<Tables>;
  readonly #dialect: SqlDialect;
  readonly #accounts: AccountsRepository;
  readonly #keys: KeysRepository;
  readonly #reservations: ReservationsRepository;
  readonly #usage: UsageRepository;
  readonly #settings: SettingsRepository;
  readonly #makeHotPath: (() => HotPath) | null;
  #builtHotPath: HotPath | null = null;
  readonly #files: FilesRepository;
  readonly #batches: BatchesRepository;

  /** `hotPath`: builds the dialect's hot path; called on first use, after migrations (it may prepare statements). */
  constructor(
    db: Kysely<Tables>,
    dialect: SqlDialect,
    hotPath: (() => HotPath) | null = null,
    /** Runs after the database is closed (stops SQLite's checkpointer thread). */
    private readonly afterClose: () => Promise<void> = async () => {},
  ) {
    this.#makeHotPath = hotPath;
    this.#db = db;
    this.#dialect = dialect;
    this.#accounts = new AccountsRepository(db);
    this.#keys = new KeysRepository(db);
    this.#reservations = new ReservationsRepository(db);
    this.#usage = new UsageRepository(db, dialect);
    this.#settings = new SettingsRepository(db);
    this.#files = new FilesRepository(db);
    this.#batches = new BatchesRepository(db, dialect, this.#reservations);
  }

  get #hotPath(): HotPath | null {
    if (this.#makeHotPath === null) return null;
    return (this.#builtHotPath ??= this.#makeHotPath());
  }

  /**
   * Kysely's Migrator: PostgreSQL runs it under an advisory lock in one transaction (two instances at once: one
   * applies, the other then finds nothing pending); SQLite in one BEGIN IMMEDIATE transaction (see ImmediateSqliteDialect).
   */
  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.#db,
      provider: { getMigrations: async () => ({ ...allMigrations }) },
      migrationTableSchema: await this.#dialect.migrationTableSchema(this.#db),
      // Migrations are written on parallel branches (0003 landed after 0004 had run on some databases); each one is
      // independent of those numbered after it, so a late lower number is applied rather than refused.
      allowUnorderedMigrations: true,
    });
    const { error } = await migrator.migrateToLatest();
    if (error !== undefined) throw error instanceof Error ? error : new Error(`migration failed: ${String(error)}`);
  }

  async close(): Promise<void> {
    await this.#builtHotPath?.flush?.();
    await this.#builtHotPath?.close?.();
    await this.#db.destroy();
    await this.afterClose();
  }

  createAccount(input: { name: string; now: number; limits?: AccountLimits }): Promise<Account> {
    return this.#accounts.create(input);
  }
  async setAccountLimits(id: string, limits: AccountLimits): Promise<Account | null> {
    return this.#withHolds(await this.#accounts.setLimits(id, limits));
  }
  async getAccount(id: string): Promise<Account | null> {
    return this.#withHolds(await this.#accounts.get(id));
  }
  async listAccounts(): Promise<Account[]> {
    return (await this.#accounts.list()).map((account) => this.#withHolds(account)!);
  }
  async addCredits(input: { accountId: string; amountMicros: number; note: string | null; now: number }): Promise<Account | null> {
    // A debit may not take what requests in flight hold in memory; read inside the transaction, while no reservation
    // can run on this connection (SqliteHotPath waits for Kysely's transactions).
    const floor = () => this.#builtHotPath?.heldByAccount?.(input.accountId) ?? 0;
    return this.#withHolds(await this.#accounts.addCredits(input, floor));
  }

  createKey(input: NewApiKey & { now: number }): Promise<ApiKey> {
    return this.#keys.create(input);
  }
  async getKey(id: string): Promise<ApiKey | null> {
    return this.#keyWithHolds(await this.#keys.get(id));
  }
  async findKeyByHash(secretHash: string): Promise<ApiKey | null> {
    return this.#keyWithHolds(await this.#keys.findByHash(secretHash));
  }
  async findKeyWithAccountByHash(secretHash: string): Promise<{ key: ApiKey; account: Account } | null> {
    const hotPath = this.#hotPath;
    const found = hotPath?.findKeyWithAccountByHash ? hotPath.findKeyWithAccountByHash(secretHash) : await this.#keys.findWithAccountByHash(secretHash);
    return found === null ? null : { key: this.#keyWithHolds(found.key)!, account: this.#withHolds(found.account)! };
  }
  async listKeys(accountId: string): Promise<ApiKey[]> {
    return (await this.#keys.list(accountId)).map((key) => this.#keyWithHolds(key)!);
  }
  revokeKey(id: string, now: number): Promise<boolean> {
    return this.#keys.revoke(id, now);
  }
  touchKey(id: string, now: number): Promise<void> {
    return this.#keys.touch(id, now);
  }

  reserve(request: ReservationRequest): Promise<ReservationResult> {
    return this.#hotPath ? this.#hotPath.reserve(request) : this.#reservations.reserve(request);
  }
  settle(record: UsageRecord): Promise<void> {
    return this.#hotPath ? this.#hotPath.settle(record) : this.#reservations.settle(record);
  }
  async release(requestId: string): Promise<void> {
    if (this.#hotPath) await this.#hotPath.release(requestId);
    else await this.#reservations.release(requestId);
  }
  async releaseStale(before: number): Promise<number> {
    const inMemory = this.#builtHotPath?.releaseStaleHolds?.(before) ?? 0;
    return inMemory + (await this.#reservations.releaseStale(before));
  }

  /**
   * The balance as the contract means it (credits - settled usage - open holds): the database's, less what requests
   * in flight hold in this process's memory (decision 0021).
   */
  #withHolds(account: Account | null): Account | null {
    const held = account === null ? 0 : (this.#builtHotPath?.heldByAccount?.(account.id) ?? 0);
    return held === 0 ? account : { ...account!, balanceMicros: account!.balanceMicros - held };
  }

  /** The key's spent as the contract means it (settled usage + open holds). */
  #keyWithHolds(key: ApiKey | null): ApiKey | null {
    const held = key === null ? 0 : (this.#builtHotPath?.heldByKey?.(key.id) ?? 0);
    return held === 0 ? key : { ...key!, spentMicros: key!.spentMicros + held };
  }

  usageSummary(query: { accountId: string | null; start: number; end: number; groupBy: UsageGroupBy }): Promise<UsageSummaryRow[]> {
    return this.#usage.summary(query);
  }
  listUsage(query: { accountId: string | null; limit: number; after: string | null }): Promise<{ records: UsageRecord[]; hasMore: boolean }> {
    return this.#usage.list(query);
  }
  ledgerTotals(accountId: string): Promise<{ creditsMicros: number; usageMicros: number }> {
    return this.#usage.ledgerTotals(accountId);
  }

  getSetting(key: string): Promise<string | null> {
    return this.#settings.get(key);
  }
  setSettingIfAbsent(key: string, value: string): Promise<string> {
    return this.#settings.setIfAbsent(key, value);
  }
  setSetting(key: string, value: string): Promise<void> {
    return this.#settings.set(key, value);
  }

  createFile(input: { accountId: string; purpose: string; filename: string; content: Buffer; now: number }): Promise<StoredFile> {
    return this.#files.create(input);
  }
  getFile(accountId: string, id: string): Promise<StoredFile | null> {
    return this.#files.get(accountId, id);
  }
  getFileContent(accountId: string, id: string): Promise<Buffer | null> {
    return this.#files.content(accountId, id);
  }
  listFiles(query: { accountId: string; purpose: string | null; limit: number; after: string | null; order: 'asc' | 'desc' }): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    return this.#files.list(query);
  }
  deleteFile(accountId: string, id: string): Promise<boolean> {
    return this.#files.delete(accountId, id);
  }

  createBatch(input: NewBatch): Promise<Batch> {
    return this.#batches.create(input);
  }
  getBatch(accountId: string | null, id: string): Promise<Batch | null> {
    return this.#batches.get(accountId, id);
  }
  listBatches(query: { accountId: string; limit: number; after: string | null }): Promise<{ batches: Batch[]; hasMore: boolean }> {
    return this.#batches.list(query);
  }
  cancelBatch(accountId: string, id: string, now: number): Promise<Batch | null> {
    return this.#batches.cancel(accountId, id, now);
  }
  claimBatchLines(input: { workerId: string; limit: number; nowMs: number; leaseMs: number }): Promise<ClaimedLine[]> {
    return this.#batches.claim(input);
  }
  renewBatchLeases(input: { workerId: string; nowMs: number; leaseMs: number }): Promise<Array<{ batchId: string; lineIndex: number; attempt: number }>> {
    return this.#batches.renew(input);
  }
  completeBatchLine(completion: LineCompletion, usage: UsageRecord | null): Promise<boolean> {
    // The line's settlement takes a reservation row in its transaction: a hold in memory would leave it unbilled.
    if (usage !== null && this.#builtHotPath?.holdsInMemory?.(usage.id) === true) {
      return Promise.reject(new Error(`completeBatchLine: request ${usage.id} was reserved in memory; batch lines reserve with durable: true`));
    }
    return this.#batches.complete(completion, usage);
  }
  retryBatchLine(input: { batchId: string; lineIndex: number; workerId: string; attempt: number; notBeforeMs: number }): Promise<boolean> {
    return this.#batches.retry(input);
  }
  expireBatches(now: number): Promise<string[]> {
    return this.#batches.expire(now);
  }
  finalizeBatches(input: { now: number; limit: number; render: (line: UnansweredLine) => string }): Promise<string[]> {
    return this.#batches.finalize(input);
  }
}

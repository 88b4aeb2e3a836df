import type { ColumnType, Generated } from 'kysely';
import type { AccountStatus } from './store.js';

/**
 * Kysely's view of the schema (see migrations/). Column names are SQL snake_case. Money is integer micro-USD in
 * `*_micros` BIGINT columns; times are unix seconds in BIGINT columns.
 */

/** A BIGINT: written as a number, read as a string (pg) or a number (SQLite); read it through `toSafeInteger`. */
export type BigIntColumn = ColumnType<string | number, number, number>;
export type NullableBigIntColumn = ColumnType<string | number | null, number | null, number | null>;

export interface AccountsTable {
  /** `acct_<hex>`. */
  id: string;
  name: string;
  status: AccountStatus;
  /** Credits minus settled usage minus open reservations; CHECK >= 0. */
  balance_micros: BigIntColumn;
  created_at: BigIntColumn;
  /** Account-wide limits (migration 0002); null = unlimited. */
  rpm: ColumnType<number | null, number | null | undefined, number | null>;
  tpm: ColumnType<number | null, number | null | undefined, number | null>;
  max_concurrency: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface ApiKeysTable {
  /** `key_<hex>`. */
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  /** sha256 hex of the secret; unique. */
  secret_hash: string;
  created_at: BigIntColumn;
  last_used_at: NullableBigIntColumn;
  expires_at: NullableBigIntColumn;
  revoked_at: NullableBigIntColumn;
  /** JSON array of model ids, or null for all models. */
  models: string | null;
  rpm: number | null;
  tpm: number | null;
  max_concurrency: number | null;
  spend_limit_micros: NullableBigIntColumn;
  /** Settled usage plus open reservations made with this key. */
  spent_micros: BigIntColumn;
}

export type LedgerKind = 'credit' | 'usage';

export interface LedgerEntriesTable {
  /** `led_<hex>`. */
  id: string;
  account_id: string;
  /** Signed: credits positive (or negative for a manual debit), usage is minus the cost. */
  amount_micros: BigIntColumn;
  kind: LedgerKind;
  /** The request a usage entry settles; null for credits. */
  request_id: string | null;
  note: string | null;
  created_at: BigIntColumn;
}

export interface UsageRecordsTable {
  /** The request id. */
  id: string;
  created_at: BigIntColumn;
  account_id: string;
  key_id: string | null;
  model: string;
  endpoint: string;
  status: string;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  /** Migration 0005; defaults to 0. */
  cache_write_tokens: Generated<number>;
  cost_micros: BigIntColumn;
  latency_ms: number;
  ttft_ms: number | null;
  batch_id: string | null;
}

export interface ReservationsTable {
  request_id: string;
  account_id: string;
  key_id: string | null;
  /** The hold, already taken off the account balance and added to the key's spent. */
  amount_micros: BigIntColumn;
  created_at: BigIntColumn;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface FilesTable {
  /** `file-<hex>`. */
  id: string;
  /** '' when accounts are disabled. */
  account_id: string;
  purpose: string;
  filename: string;
  bytes: BigIntColumn;
  created_at: BigIntColumn;
  content: Buffer;
}

export interface BatchesTable {
  /** `batch_<hex>`. */
  id: string;
  account_id: string;
  key_id: string | null;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: string;
  /** JSON object or null. */
  metadata: string | null;
  /** JSON array of validation errors, or null. */
  errors: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
  total: number;
  completed: number;
  failed: number;
  created_at: BigIntColumn;
  in_progress_at: NullableBigIntColumn;
  expires_at: BigIntColumn;
  finalizing_at: NullableBigIntColumn;
  completed_at: NullableBigIntColumn;
  failed_at: NullableBigIntColumn;
  expired_at: NullableBigIntColumn;
  cancelling_at: NullableBigIntColumn;
  cancelled_at: NullableBigIntColumn;
}

export interface BatchLinesTable {
  batch_id: string;
  line_index: number;
  custom_id: string;
  /** The line's request body, JSON. */
  body: string;
  status: string;
  worker_id: string | null;
  attempt: number;
  lease_until_ms: NullableBigIntColumn;
  /** The output or error file line, JSON. */
  result: string | null;
  finished_at: NullableBigIntColumn;
}

export interface Tables {
  files: FilesTable;
  batches: BatchesTable;
  batch_lines: BatchLinesTable;
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  ledger_entries: LedgerEntriesTable;
  usage_records: UsageRecordsTable;
  reservations: ReservationsTable;
  settings: SettingsTable;
}

import type { UsageRecord } from './store.js';

/**
 * The part of the store contract that holds uploaded files and batches. Files keep their content in the database
 * (a blob), so every instance sharing it reads every file. Times are unix seconds unless named `*Ms`.
 */

export interface StoredFile {
  /** `file-<hex>`. */
  id: string;
  /** The owner; '' when accounts are disabled. */
  accountId: string;
  purpose: string;
  filename: string;
  bytes: number;
  createdAt: number;
}

export type BatchStatus = 'validating' | 'in_progress' | 'finalizing' | 'completed' | 'failed' | 'expired' | 'cancelling' | 'cancelled';

/** A line's state: pending -> running (claimed, under a lease) -> one of the final states. */
export type BatchLineStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'expired' | 'cancelled';

/** A validation error of an input file; `line` is 1-based. */
export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface Batch {
  /** `batch_<hex>`. */
  id: string;
  accountId: string;
  /** The key that created it, whose permissions and funds its lines use; null when accounts are disabled. */
  keyId: string | null;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  status: BatchStatus;
  metadata: Record<string, string> | null;
  errors: BatchError[] | null;
  outputFileId: string | null;
  errorFileId: string | null;
  requestCounts: { total: number; completed: number; failed: number };
  createdAt: number;
  inProgressAt: number | null;
  expiresAt: number;
  finalizingAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  expiredAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
}

export interface NewBatch {
  accountId: string;
  keyId: string | null;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  now: number;
  /** Unix seconds. */
  expiresAt: number;
  /** The lines to run, in file order; `body` is JSON. Empty when `errors` is set. */
  lines: Array<{ customId: string; body: string }>;
  /** Validation errors: the batch is created `failed`, with no lines. */
  errors: BatchError[] | null;
}

/** A line a worker has claimed. */
export interface ClaimedLine {
  batchId: string;
  /** 0-based position in the input file. */
  lineIndex: number;
  customId: string;
  /** The request body, JSON. */
  body: string;
  /** Counts claims of this line (1 for the first); the completion must name it. */
  attempt: number;
  endpoint: string;
  accountId: string;
  keyId: string | null;
}

/** A claimed line's result, committed once. */
export interface LineCompletion {
  batchId: string;
  lineIndex: number;
  workerId: string;
  attempt: number;
  status: 'succeeded' | 'failed';
  /** The output (succeeded) or error (failed) file line, JSON. */
  result: string;
  now: number;
}

/** A line without a result (expired or cancelled before it ran), for the error file. */
export interface UnansweredLine {
  customId: string;
  status: 'expired' | 'cancelled';
}

export interface FileStore {
  createFile(input: { accountId: string; purpose: string; filename: string; content: Buffer; now: number }): Promise<StoredFile>;
  /** The file if it exists and belongs to the account. */
  getFile(accountId: string, id: string): Promise<StoredFile | null>;
  getFileContent(accountId: string, id: string): Promise<Buffer | null>;
  /** `after`: a file id from a previous page. `order` by creation time. */
  listFiles(query: { accountId: string; purpose: string | null; limit: number; after: string | null; order: 'asc' | 'desc' }): Promise<{ files: StoredFile[]; hasMore: boolean }>;
  deleteFile(accountId: string, id: string): Promise<boolean>;
}

export interface BatchStore {
  /** Creates the batch `in_progress` with its lines pending, or `failed` with `errors`, in one transaction. */
  createBatch(input: NewBatch): Promise<Batch>;
  /** accountId null: any account's (workers). */
  getBatch(accountId: string | null, id: string): Promise<Batch | null>;
  /** Newest first; `after` is a batch id from a previous page. */
  listBatches(query: { accountId: string; limit: number; after: string | null }): Promise<{ batches: Batch[]; hasMore: boolean }>;
  /**
   * Moves an unfinished batch to `cancelling` and every line not yet answered (running ones too: their results will
   * not be taken) to `cancelled`. Returns the batch (unchanged when already final), or null when not found.
   */
  cancelBatch(accountId: string, id: string, now: number): Promise<Batch | null>;
  /**
   * Claims up to `limit` lines of `in_progress` batches, oldest batch first: pending lines (past any back-off) and
   * running lines whose lease ended (their worker died). Atomic: two workers never claim the same line.
   */
  claimBatchLines(input: { workerId: string; limit: number; nowMs: number; leaseMs: number }): Promise<ClaimedLine[]>;
  /** Extends the leases of the worker's running lines; returns the lines it still holds (others were cancelled or expired). */
  renewBatchLeases(input: { workerId: string; nowMs: number; leaseMs: number }): Promise<Array<{ batchId: string; lineIndex: number; attempt: number }>>;
  /**
   * Commits a line's result, and the usage record of its request (settling its reservation) when `usage` is given,
   * in one transaction. False (nothing written) when the worker no longer holds the line.
   */
  completeBatchLine(completion: LineCompletion, usage: UsageRecord | null): Promise<boolean>;
  /** Gives a claimed line back (pending again, not before `notBeforeMs`); false when the worker no longer held it. */
  retryBatchLine(input: { batchId: string; lineIndex: number; workerId: string; attempt: number; notBeforeMs: number }): Promise<boolean>;
  /** Expires the unanswered lines of batches whose window ended by `now`. Returns the batch ids. */
  expireBatches(now: number): Promise<string[]>;
  /**
   * Finishes batches with no pending or running line: writes the output and error files (answered lines' results in
   * file order; `render` writes the lines that were never answered) and sets the final status (`completed`,
   * `expired` or `cancelled`), each batch in one transaction. Returns the finished batch ids.
   */
  finalizeBatches(input: { now: number; limit: number; render: (line: UnansweredLine) => string }): Promise<string[]>;
}

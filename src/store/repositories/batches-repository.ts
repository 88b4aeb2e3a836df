import { sql, type ExpressionBuilder, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Batch, BatchError, BatchStatus, ClaimedLine, LineCompletion, NewBatch, UnansweredLine } from '../batch-store.js';
import type { UsageRecord } from '../store.js';
import type { SqlDialect } from '../sql-dialect.js';
import type { BatchesTable, Tables } from '../tables.js';
import { newId } from '../new-id.js';
import { assertSafeInteger, toSafeInteger, toSafeIntegerOrNull } from '../to-safe-integer.js';
import type { ReservationsRepository } from './reservations-repository.js';

/** Lines inserted per statement (SQLite allows 32766 bound parameters; 4 per line). */
const INSERT_CHUNK = 500;

/**
 * The line as the worker holds it: still running, under its worker id and attempt. A line whose lease expired and
 * that another worker (or a later attempt) claimed is no longer this worker's to finish.
 */
function ownedLine(line: { batchId: string; lineIndex: number; workerId: string; attempt: number }) {
  return (eb: ExpressionBuilder<Tables, 'batch_lines'>) =>
    eb.and({ batch_id: line.batchId, line_index: line.lineIndex, status: 'running', worker_id: line.workerId, attempt: line.attempt });
}

/** Thrown inside a transaction to roll it back. A finished line keeps the `worker_id` that answered it (audits). */
class Rollback {}

function rowToBatch(row: Selectable<BatchesTable>): Batch {
  return {
    id: row.id,
    accountId: row.account_id,
    keyId: row.key_id,
    endpoint: row.endpoint,
    inputFileId: row.input_file_id,
    completionWindow: row.completion_window,
    status: row.status as BatchStatus,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, string>),
    errors: row.errors === null ? null : (JSON.parse(row.errors) as BatchError[]),
    outputFileId: row.output_file_id,
    errorFileId: row.error_file_id,
    requestCounts: { total: row.total, completed: row.completed, failed: row.failed },
    createdAt: toSafeInteger(row.created_at),
    inProgressAt: toSafeIntegerOrNull(row.in_progress_at),
    expiresAt: toSafeInteger(row.expires_at),
    finalizingAt: toSafeIntegerOrNull(row.finalizing_at),
    completedAt: toSafeIntegerOrNull(row.completed_at),
    failedAt: toSafeIntegerOrNull(row.failed_at),
    expiredAt: toSafeIntegerOrNull(row.expired_at),
    cancellingAt: toSafeIntegerOrNull(row.cancelling_at),
    cancelledAt: toSafeIntegerOrNull(row.cancelled_at),
  };
}

/**
 * Batches and their lines. Exactly-once: a line's result is written only by the worker that holds its claim
 * (`worker_id` and `attempt` match, status `running`), in the same transaction as its usage record; a claim whose
 * worker died is taken over when its lease ends. Lock order in every transaction: lines, then the batch row, then
 * the reservation (settle), so they cannot deadlock on PostgreSQL.
 */
export class BatchesRepository {
  constructor(
    private readonly db: Kysely<Tables>,
    private readonly dialect: SqlDialect,
    private readonly reservations: ReservationsRepository,
  ) {}

  async create(input: NewBatch): Promise<Batch> {
    const id = newId('batch');
    const failed = input.errors !== null;
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('batches')
        .values({
          id,
          account_id: input.accountId,
          key_id: input.keyId,
          endpoint: input.endpoint,
          input_file_id: input.inputFileId,
          completion_window: input.completionWindow,
          status: failed ? 'failed' : 'in_progress',
          metadata: input.metadata === null ? null : JSON.stringify(input.metadata),
          errors: failed ? JSON.stringify(input.errors) : null,
          output_file_id: null,
          error_file_id: null,
          total: failed ? 0 : input.lines.length,
          completed: 0,
          failed: 0,
          created_at: input.now,
          in_progress_at: failed ? null : input.now,
          expires_at: input.expiresAt,
          finalizing_at: null,
          completed_at: null,
          failed_at: failed ? input.now : null,
          expired_at: null,
          cancelling_at: null,
          cancelled_at: null,
        })
        .execute();
      if (failed) return;
      for (let start = 0; start < input.lines.length; start += INSERT_CHUNK) {
        const chunk = input.lines.slice(start, start + INSERT_CHUNK);
        await trx
          .insertInto('batch_lines')
          .values(
            chunk.map((line, offset) => ({
              batch_id: id,
              line_index: start + offset,
              custom_id: line.customId,
              body: line.body,
              status: 'pending',
              worker_id: null,
              attempt: 0,
              lease_until_ms: null,
              result: null,
              finished_at: null,
            })),
          )
          .execute();
      }
    });
    const batch = await this.get(null, id);
    if (!batch) throw new Error(`batch ${id} vanished after insert`);
    return batch;
  }

  async get(accountId: string | null, id: string): Promise<Batch | null> {
    let select = this.db.selectFrom('batches').selectAll().where('id', '=', id);
    if (accountId !== null) select = select.where('account_id', '=', accountId);
    const row = await select.executeTakeFirst();
    return row ? rowToBatch(row) : null;
  }

  async list(query: { accountId: string; limit: number; after: string | null }): Promise<{ batches: Batch[]; hasMore: boolean }> {
    assertSafeInteger(query.limit, 'limit');
    let select = this.db.selectFrom('batches').selectAll().where('account_id', '=', query.accountId);
    if (query.after !== null) {
      const after = query.after;
      const cursor = await this.db.selectFrom('batches').select('created_at').where('id', '=', after).where('account_id', '=', query.accountId).executeTakeFirst();
      if (!cursor) return { batches: [], hasMore: false };
      const createdAt = toSafeInteger(cursor.created_at);
      select = select.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', after)])]));
    }
    const rows = await select.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit + 1).execute();
    return { batches: rows.slice(0, query.limit).map(rowToBatch), hasMore: rows.length > query.limit };
  }

  async cancel(accountId: string, id: string, now: number): Promise<Batch | null> {
    await this.db.transaction().execute(async (trx) => {
      const batch = await trx.selectFrom('batches').select('status').where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
      if (!batch || (batch.status !== 'in_progress' && batch.status !== 'validating')) return;
      await this.endLines(trx, id, 'cancelled', now);
      await trx
        .updateTable('batches')
        .set({ status: 'cancelling', cancelling_at: now })
        .where('id', '=', id)
        .where('status', 'in', ['in_progress', 'validating'])
        .execute();
    });
    return this.get(accountId, id);
  }

  /** Ends every pending or running line of the batch without a result. */
  private async endLines(trx: Transaction<Tables>, batchId: string, status: 'cancelled' | 'expired', now: number): Promise<void> {
    await trx
      .updateTable('batch_lines')
      .set({ status, worker_id: null, lease_until_ms: null, finished_at: now })
      .where('batch_id', '=', batchId)
      .where('status', 'in', ['pending', 'running'])
      .execute();
  }

  async claim(input: { workerId: string; limit: number; nowMs: number; leaseMs: number }): Promise<ClaimedLine[]> {
    assertSafeInteger(input.limit, 'limit');
    if (input.limit <= 0) return [];
    // Oldest batch first; within a batch, lines whose lease lapsed (their worker died), then pending ones, in file
    // order. Each step is one index-driven statement per batch (a query over all pending lines of all batches costs
    // milliseconds per claim with tens of thousands of lines).
    const batches = await this.db
      .selectFrom('batches')
      .select(['id', 'endpoint', 'account_id', 'key_id'])
      .where('status', '=', 'in_progress')
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const claimed: ClaimedLine[] = [];
    for (const batch of batches) {
      for (const state of ['running', 'pending'] as const) {
        const room = input.limit - claimed.length;
        if (room <= 0) return claimed;
        const rows = await this.claimIn(batch.id, state, room, input);
        for (const row of rows) {
          claimed.push({
            batchId: batch.id,
            lineIndex: Number(row.line_index),
            customId: row.custom_id,
            body: row.body,
            attempt: Number(row.attempt),
            endpoint: batch.endpoint,
            accountId: batch.account_id,
            keyId: batch.key_id,
          });
        }
      }
    }
    return claimed;
  }

  /**
   * One statement: the CTE picks the lines once (on PostgreSQL it locks them, skipping rows other workers are
   * claiming; a CTE is evaluated once, where an IN subquery may be re-run by a concurrent-update recheck and pick
   * more rows), the update takes them. SQLite runs it under its database write lock, so it is atomic there too.
   */
  private async claimIn(batchId: string, state: 'running' | 'pending', limit: number, input: { workerId: string; nowMs: number; leaseMs: number }) {
    const { nowMs } = input;
    const lockClause = this.dialect.name === 'postgres' ? sql`for update skip locked` : sql``;
    const due = state === 'running' ? sql`lease_until_ms <= ${nowMs}` : sql`(lease_until_ms is null or lease_until_ms <= ${nowMs})`;
    const result = await sql<{ line_index: number; custom_id: string; body: string; attempt: number }>`
      with picked as (
        select line_index from batch_lines
        where batch_id = ${batchId} and status = ${state} and ${due}
        order by line_index
        limit ${limit}
        ${lockClause}
      )
      update batch_lines set status = 'running', worker_id = ${input.workerId}, attempt = attempt + 1,
        lease_until_ms = ${nowMs + input.leaseMs}
      where batch_id = ${batchId} and line_index in (select line_index from picked)
      returning line_index, custom_id, body, attempt`.execute(this.db);
    return result.rows.sort((a, b) => Number(a.line_index) - Number(b.line_index));
  }

  async renew(input: { workerId: string; nowMs: number; leaseMs: number }): Promise<Array<{ batchId: string; lineIndex: number; attempt: number }>> {
    const rows = await this.db
      .updateTable('batch_lines')
      .set({ lease_until_ms: input.nowMs + input.leaseMs })
      .where('worker_id', '=', input.workerId)
      .where('status', '=', 'running')
      .returning(['batch_id', 'line_index', 'attempt'])
      .execute();
    return rows.map((row) => ({ batchId: row.batch_id, lineIndex: Number(row.line_index), attempt: Number(row.attempt) }));
  }

  async complete(completion: LineCompletion, usage: UsageRecord | null): Promise<boolean> {
    try {
      await this.db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('batch_lines')
          .set({ status: completion.status, result: completion.result, finished_at: completion.now, lease_until_ms: null })
          .where(ownedLine(completion))
          .executeTakeFirst();
        if (updated.numUpdatedRows === 0n) throw new Rollback();
        const counter = completion.status === 'succeeded' ? 'completed' : 'failed';
        await trx
          .updateTable('batches')
          .set((eb) => ({ [counter]: eb(counter, '+', 1) }))
          .where('id', '=', completion.batchId)
          .execute();
        if (usage !== null) await this.reservations.settleIn(trx, usage);
      });
      return true;
    } catch (error) {
      if (error instanceof Rollback) return false;
      throw error;
    }
  }

  async retry(input: { batchId: string; lineIndex: number; workerId: string; attempt: number; notBeforeMs: number }): Promise<boolean> {
    const updated = await this.db
      .updateTable('batch_lines')
      .set({ status: 'pending', worker_id: null, lease_until_ms: input.notBeforeMs })
      .where(ownedLine(input))
      .executeTakeFirst();
    return updated.numUpdatedRows > 0n;
  }

  async expire(now: number): Promise<string[]> {
    const due = await this.db
      .selectFrom('batches')
      .select('id')
      .where('status', 'in', ['in_progress', 'validating'])
      .where('expires_at', '<=', now)
      .execute();
    const expired: string[] = [];
    for (const { id } of due) {
      const changed = await this.db.transaction().execute(async (trx) => {
        await this.endLines(trx, id, 'expired', now);
        const result = await trx
          .updateTable('batches')
          .set({ expired_at: now, status: 'finalizing', finalizing_at: now })
          .where('id', '=', id)
          .where('status', 'in', ['in_progress', 'validating'])
          .executeTakeFirst();
        return result.numUpdatedRows > 0n;
      });
      if (changed) expired.push(id);
    }
    return expired;
  }

  async finalize(input: { now: number; limit: number; render: (line: UnansweredLine) => string }): Promise<string[]> {
    const { now } = input;
    const candidates = await this.db
      .selectFrom('batches as b')
      .select(['b.id', 'b.status'])
      .where('b.status', 'in', ['in_progress', 'cancelling', 'finalizing'])
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('batch_lines as l').select('l.line_index').whereRef('l.batch_id', '=', 'b.id').where('l.status', 'in', ['pending', 'running']))),
      )
      .limit(input.limit)
      .execute();
    const finished: string[] = [];
    for (const candidate of candidates) {
      const done = await this.db.transaction().execute(async (trx) => {
        // The conditional update takes the batch row: of several instances finalizing at once, one wins.
        const claimed = await trx
          .updateTable('batches')
          .set({ finalizing_at: now })
          .where('id', '=', candidate.id)
          .where('status', '=', candidate.status)
          .where('output_file_id', 'is', null)
          .where('error_file_id', 'is', null)
          .where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom('batch_lines').select('line_index').where('batch_id', '=', candidate.id).where('status', 'in', ['pending', 'running']))),
          )
          .returning(['account_id', 'expired_at', 'status'])
          .executeTakeFirst();
        if (!claimed) return false;
        const lines = await trx
          .selectFrom('batch_lines')
          .select(['custom_id', 'status', 'result'])
          .where('batch_id', '=', candidate.id)
          .orderBy('line_index')
          .execute();
        const output: string[] = [];
        const errors: string[] = [];
        for (const line of lines) {
          if (line.status === 'succeeded') output.push(line.result!);
          else if (line.status === 'failed') errors.push(line.result!);
          else errors.push(input.render({ customId: line.custom_id, status: line.status as UnansweredLine['status'] }));
        }
        const outputFileId = output.length > 0 ? await this.insertFile(trx, claimed.account_id, candidate.id, 'output', output, now) : null;
        const errorFileId = errors.length > 0 ? await this.insertFile(trx, claimed.account_id, candidate.id, 'error', errors, now) : null;
        const final = claimed.expired_at !== null ? 'expired' : claimed.status === 'cancelling' ? 'cancelled' : 'completed';
        await trx
          .updateTable('batches')
          .set({
            status: final,
            output_file_id: outputFileId,
            error_file_id: errorFileId,
            completed_at: final === 'completed' ? now : null,
            cancelled_at: final === 'cancelled' ? now : null,
          })
          .where('id', '=', candidate.id)
          .execute();
        return true;
      });
      if (done) finished.push(candidate.id);
    }
    return finished;
  }

  private async insertFile(trx: Transaction<Tables>, accountId: string, batchId: string, kind: 'output' | 'error', lines: string[], now: number): Promise<string> {
    const content = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    const id = newId('file');
    await trx
      .insertInto('files')
      .values({ id, account_id: accountId, purpose: 'batch_output', filename: `${batchId}_${kind}.jsonl`, bytes: content.length, created_at: now, content })
      .execute();
    return id;
  }
}

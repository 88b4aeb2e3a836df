import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { UsageGroupBy, UsageRecord, UsageSummaryRow } from '../store.js';
import type { SqlDialect } from '../sql-dialect.js';
import type { Tables, UsageRecordsTable } from '../tables.js';
import { assertSafeInteger, toSafeInteger, toSafeIntegerOrNull } from '../to-safe-integer.js';

export function rowToUsageRecord(row: Selectable<UsageRecordsTable>): UsageRecord {
  return {
    id: row.id,
    createdAt: toSafeInteger(row.created_at),
    accountId: row.account_id,
    keyId: row.key_id,
    model: row.model,
    endpoint: row.endpoint,
    status: row.status,
    promptTokens: row.prompt_tokens,
    cachedTokens: row.cached_tokens,
    completionTokens: row.completion_tokens,
    cacheWriteTokens: row.cache_write_tokens,
    costMicros: toSafeInteger(row.cost_micros),
    latencyMs: row.latency_ms,
    ttftMs: row.ttft_ms,
    batchId: row.batch_id,
  };
}

type SumValue = string | number | bigint | null;

/** Reads over usage records and the ledger. Records are written by ReservationsRepository.settle. */
export class UsageRepository {
  constructor(
    private readonly db: Kysely<Tables>,
    private readonly dialect: SqlDialect,
  ) {}

  /**
   * Totals per model, key or UTC day over records with `start <= created_at < end` (unix seconds). Records without
   * a key are grouped under the key id `''`. Sorted by group in code-unit order (the same on both databases,
   * whatever PostgreSQL's collation).
   */
  async summary(query: { accountId: string | null; start: number; end: number; groupBy: UsageGroupBy }): Promise<UsageSummaryRow[]> {
    const group = this.groupExpression(query.groupBy);
    let select = this.db
      .selectFrom('usage_records')
      .select((eb) => [
        group.as('group_key'),
        eb.fn.countAll<string | number | bigint>().as('requests'),
        eb.fn.sum<SumValue>('prompt_tokens').as('prompt_tokens'),
        eb.fn.sum<SumValue>('cached_tokens').as('cached_tokens'),
        eb.fn.sum<SumValue>('completion_tokens').as('completion_tokens'),
        eb.fn.sum<SumValue>('cost_micros').as('cost_micros'),
      ])
      .where('created_at', '>=', query.start)
      .where('created_at', '<', query.end)
      .groupBy(group);
    if (query.accountId !== null) select = select.where('account_id', '=', query.accountId);
    const rows = await select.execute();
    return rows
      .map((row) => ({
        group: row.group_key,
        requests: toSafeInteger(row.requests),
        promptTokens: toSafeInteger(row.prompt_tokens),
        cachedTokens: toSafeInteger(row.cached_tokens),
        completionTokens: toSafeInteger(row.completion_tokens),
        costMicros: toSafeInteger(row.cost_micros),
      }))
      .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  private groupExpression(groupBy: UsageGroupBy): RawBuilder<string> {
    switch (groupBy) {
      case 'model':
        return sql<string>`${sql.ref('model')}`;
      case 'key':
        return sql<string>`coalesce(${sql.ref('key_id')}, '')`;
      case 'day':
        return this.dialect.utcDay('created_at');
    }
  }

  /**
   * Newest first (created_at desc, id desc). `after` is the id of the last record of the previous page (keyset
   * pagination: stable while new records arrive); an unknown id gives an empty page.
   */
  async list(query: { accountId: string | null; limit: number; after: string | null }): Promise<{ records: UsageRecord[]; hasMore: boolean }> {
    assertSafeInteger(query.limit, 'limit');
    let select = this.db.selectFrom('usage_records').selectAll();
    if (query.accountId !== null) select = select.where('account_id', '=', query.accountId);
    if (query.after !== null) {
      const after = query.after;
      const cursor = await this.db.selectFrom('usage_records').select('created_at').where('id', '=', after).executeTakeFirst();
      if (!cursor) return { records: [], hasMore: false };
      const createdAt = toSafeInteger(cursor.created_at);
      select = select.where((eb) =>
        eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', after)])]),
      );
    }
    const rows = await select
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(query.limit + 1)
      .execute();
    return { records: rows.slice(0, query.limit).map(rowToUsageRecord), hasMore: rows.length > query.limit };
  }

  /** Credits: the sum of `credit` entries (signed). Usage: the sum of settled costs (usage entries negated). */
  async ledgerTotals(accountId: string): Promise<{ creditsMicros: number; usageMicros: number }> {
    const rows = await this.db
      .selectFrom('ledger_entries')
      .select((eb) => ['kind', eb.fn.sum<SumValue>('amount_micros').as('total')])
      .where('account_id', '=', accountId)
      .groupBy('kind')
      .execute();
    const total = (kind: 'credit' | 'usage') => toSafeIntegerOrNull(rows.find((row) => row.kind === kind)?.total) ?? 0;
    // 0 - x rather than -x: no -0 when there is no usage.
    return { creditsMicros: total('credit'), usageMicros: 0 - total('usage') };
  }
}

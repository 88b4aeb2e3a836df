import { sql, type Kysely } from 'kysely';
import { newId } from './new-id.js';
import type { ReservationRequest, ReservationResult, UsageRecord } from './store.js';
import type { Tables } from './tables.js';
import { assertSafeInteger } from './to-safe-integer.js';

/**
 * The request path's reservation, settlement and release on PostgreSQL: one call each of the functions created by
 * migrations 0004 and 0005, one round trip instead of five to seven (decision 0010).
 */
export class PostgresHotPath {
  constructor(private readonly db: Kysely<Tables>) {}

  async reserve(request: ReservationRequest): Promise<ReservationResult> {
    assertSafeInteger(request.amountMicros, 'amountMicros');
    const { rows } = await sql<{ result: ReservationResult }>`
      select tm_reserve(${request.requestId}, ${request.accountId}, ${request.keyId}, ${request.amountMicros}, ${request.now}) as result`.execute(this.db);
    return rows[0].result;
  }

  async settle(record: UsageRecord): Promise<void> {
    assertSafeInteger(record.costMicros, 'costMicros');
    await sql`
      select tm_settle(${record.id}, ${record.createdAt}, ${record.accountId}, ${record.keyId}, ${record.model},
                       ${record.endpoint}, ${record.status}, ${record.promptTokens}, ${record.cachedTokens},
                       ${record.completionTokens}, ${record.costMicros}, ${record.latencyMs}, ${record.ttftMs},
                       ${record.batchId}, ${newId('led')}, ${record.cacheWriteTokens ?? 0})`.execute(this.db);
  }

  async release(requestId: string): Promise<boolean> {
    const { rows } = await sql<{ released: boolean }>`select tm_release(${requestId}) as released`.execute(this.db);
    return rows[0].released;
  }
}

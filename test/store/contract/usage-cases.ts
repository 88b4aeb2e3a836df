import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Store, UsageRecord } from '../../../src/store/store.js';
import { fundedAccount, newKey, usageRecord, type StoreContext } from './store-context.js';

const DAY = 86_400;

/** Reserves the cost, then settles the record: the only way usage records are written. */
async function recordUsage(store: Store, fields: Pick<UsageRecord, 'id' | 'accountId' | 'createdAt' | 'costMicros'> & Partial<UsageRecord>): Promise<UsageRecord> {
  const record = usageRecord(fields);
  const result = await store.reserve({ requestId: record.id, accountId: record.accountId, keyId: record.keyId, amountMicros: record.costMicros, now: record.createdAt });
  assert.equal(result, 'reserved');
  await store.settle(record);
  return record;
}

export function usageCases(context: StoreContext): void {
  test('usageSummary groups by model, key and UTC day over [start, end)', async () => {
    const store = context.store();
    const start = 20_833 * DAY; // midnight UTC; no other case writes usage in these two days
    const end = start + 2 * DAY;
    const firstDay = new Date(start * 1000).toISOString().slice(0, 10);
    const secondDay = new Date((start + DAY) * 1000).toISOString().slice(0, 10);
    const a = await fundedAccount(store, 1_000_000);
    const b = await fundedAccount(store, 1_000_000);
    const key = await newKey(store, a.id);
    const id = () => `req_${randomBytes(8).toString('hex')}`;
    await recordUsage(store, { id: id(), accountId: a.id, keyId: key.id, model: 'm1', createdAt: start, costMicros: 100, promptTokens: 7, cachedTokens: 3, completionTokens: 11 });
    await recordUsage(store, { id: id(), accountId: a.id, model: 'm2', createdAt: start + DAY - 1, costMicros: 200 });
    await recordUsage(store, { id: id(), accountId: a.id, keyId: key.id, model: 'm1', createdAt: start + DAY, costMicros: 300, promptTokens: 1, cachedTokens: 0, completionTokens: 1 });
    await recordUsage(store, { id: id(), accountId: b.id, model: 'm1', createdAt: start + DAY + 5, costMicros: 400 });
    await recordUsage(store, { id: id(), accountId: a.id, model: 'm1', createdAt: end, costMicros: 500 });
    await recordUsage(store, { id: id(), accountId: a.id, model: 'm1', createdAt: start - 1, costMicros: 600 });

    const row = (group: string, requests: number, costMicros: number, promptTokens = 10 * requests, cachedTokens = 2 * requests, completionTokens = 5 * requests) =>
      ({ group, requests, promptTokens, cachedTokens, completionTokens, costMicros });
    assert.deepEqual(await store.usageSummary({ accountId: a.id, start, end, groupBy: 'model' }), [row('m1', 2, 400, 8, 3, 12), row('m2', 1, 200)]);
    assert.deepEqual(await store.usageSummary({ accountId: null, start, end, groupBy: 'model' }), [row('m1', 3, 800, 18, 5, 17), row('m2', 1, 200)]);
    assert.deepEqual(await store.usageSummary({ accountId: a.id, start, end, groupBy: 'key' }), [row('', 1, 200), row(key.id, 2, 400, 8, 3, 12)]);
    assert.deepEqual(await store.usageSummary({ accountId: null, start, end, groupBy: 'day' }), [
      row(firstDay, 2, 300, 17, 5, 16),
      row(secondDay, 2, 700, 11, 2, 6),
    ]);
    assert.deepEqual(await store.usageSummary({ accountId: a.id, start: end + DAY, end: end + 2 * DAY, groupBy: 'day' }), []);
  });

  test('listUsage pages newest first, ties broken by id, with hasMore', async () => {
    const store = context.store();
    const t = 1_900_000_000; // newer than every other case's usage
    const account = await fundedAccount(store, 1_000_000);
    const other = await fundedAccount(store, 1_000_000);
    const prefix = `req_${randomBytes(6).toString('hex')}_`;
    const times = [t + 2, t, t + 1, t, t];
    const records = new Map<string, UsageRecord>();
    for (const [index, createdAt] of times.entries()) {
      records.set(`p${index}`, await recordUsage(store, { id: `${prefix}${index}`, accountId: account.id, createdAt, costMicros: 10 + index }));
    }
    const newest = await recordUsage(store, { id: `${prefix}9`, accountId: other.id, createdAt: t + 3, costMicros: 1 });
    const expected = ['p0', 'p2', 'p4', 'p3', 'p1'].map((name) => records.get(name));

    const page1 = await store.listUsage({ accountId: account.id, limit: 2, after: null });
    assert.deepEqual(page1, { records: expected.slice(0, 2), hasMore: true });
    const page2 = await store.listUsage({ accountId: account.id, limit: 2, after: page1.records[1].id });
    assert.deepEqual(page2, { records: expected.slice(2, 4), hasMore: true });
    const page3 = await store.listUsage({ accountId: account.id, limit: 2, after: page2.records[1].id });
    assert.deepEqual(page3, { records: expected.slice(4), hasMore: false });
    assert.deepEqual(await store.listUsage({ accountId: account.id, limit: 5, after: null }), { records: expected, hasMore: false });
    assert.deepEqual(await store.listUsage({ accountId: account.id, limit: 5, after: 'req_unknown' }), { records: [], hasMore: false });
    const everyone = await store.listUsage({ accountId: null, limit: 6, after: null });
    assert.deepEqual(everyone.records, [newest, ...expected]);
    assert.equal(everyone.hasMore, true, 'other cases wrote older usage');
  });

  test('ledgerTotals sums credits (signed) and settled usage', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 5_000);
    await store.addCredits({ accountId: account.id, amountMicros: -1_000, note: 'correction', now: 1 });
    await recordUsage(store, { id: `req_${randomBytes(8).toString('hex')}`, accountId: account.id, createdAt: 1_700_000_000, costMicros: 750 });
    assert.deepEqual(await store.ledgerTotals(account.id), { creditsMicros: 4_000, usageMicros: 750 });
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 3_250);
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LineCompletion, NewBatch } from '../../../src/store/batch-store.js';
import { assertLedgerInvariant, fundedAccount, newKey, RESERVE_NOW, usageRecord, type StoreContext } from './store-context.js';

const NOW_MS = RESERVE_NOW * 1000;

function newBatch(accountId: string, lines: number, overrides: Partial<NewBatch> = {}): NewBatch {
  return {
    accountId,
    keyId: null,
    endpoint: '/v1/chat/completions',
    inputFileId: 'file-input',
    completionWindow: '24h',
    metadata: null,
    now: RESERVE_NOW,
    expiresAt: RESERVE_NOW + 86_400,
    lines: Array.from({ length: lines }, (_, index) => ({ customId: `c${index}`, body: JSON.stringify({ n: index }) })),
    errors: null,
    ...overrides,
  };
}

function completion(line: { batchId: string; lineIndex: number; attempt: number }, workerId: string, status: 'succeeded' | 'failed' = 'succeeded'): LineCompletion {
  return { ...line, workerId, status, result: JSON.stringify({ line: line.lineIndex, status }), now: RESERVE_NOW + 1 };
}

const render = (line: { customId: string; status: string }) => JSON.stringify({ custom_id: line.customId, unanswered: line.status });

/** Each case leaves no claimable line behind (the database is shared by the cases). */
export function batchCases(context: StoreContext): void {
  test('files: create, read scoped to the owner, list with pagination, delete', async () => {
    const store = context.store();
    const owner = (await fundedAccount(store, 0)).id;
    const content = Buffer.from([0, 1, 2, 255, 10]);
    const created = await store.createFile({ accountId: owner, purpose: 'batch', filename: 'a.jsonl', content, now: RESERVE_NOW });
    assert.match(created.id, /^file-[0-9a-f]{24}$/);
    assert.deepEqual(await store.getFile(owner, created.id), created);
    assert.equal(created.bytes, 5);
    assert.deepEqual(await store.getFileContent(owner, created.id), content, 'bytes come back unchanged');
    assert.equal(await store.getFile('acct_other', created.id), null);
    assert.equal(await store.getFileContent('acct_other', created.id), null);
    const second = await store.createFile({ accountId: owner, purpose: 'batch_output', filename: 'b.jsonl', content: Buffer.from('x'), now: RESERVE_NOW + 1 });
    const third = await store.createFile({ accountId: owner, purpose: 'batch', filename: 'c.jsonl', content: Buffer.from('y'), now: RESERVE_NOW + 2 });
    const page = await store.listFiles({ accountId: owner, purpose: null, limit: 2, after: null, order: 'desc' });
    assert.deepEqual(page.files.map((file) => file.id), [third.id, second.id]);
    assert.equal(page.hasMore, true);
    const rest = await store.listFiles({ accountId: owner, purpose: null, limit: 2, after: second.id, order: 'desc' });
    assert.deepEqual(rest.files.map((file) => file.id), [created.id]);
    assert.equal(rest.hasMore, false);
    const ascending = await store.listFiles({ accountId: owner, purpose: 'batch', limit: 10, after: null, order: 'asc' });
    assert.deepEqual(ascending.files.map((file) => file.id), [created.id, third.id]);
    assert.equal(await store.deleteFile('acct_other', created.id), false);
    assert.equal(await store.deleteFile(owner, created.id), true);
    assert.equal(await store.getFile(owner, created.id), null);
  });

  test('batches: created in_progress with pending lines, or failed with errors; listed newest first', async () => {
    const store = context.store();
    const owner = (await fundedAccount(store, 0)).id;
    const failed = await store.createBatch(newBatch(owner, 0, { errors: [{ code: 'invalid_json_line', message: 'bad', param: null, line: 2 }], now: RESERVE_NOW }));
    assert.equal(failed.status, 'failed');
    assert.equal(failed.failedAt, RESERVE_NOW);
    assert.deepEqual(failed.errors, [{ code: 'invalid_json_line', message: 'bad', param: null, line: 2 }]);
    const batch = await store.createBatch(newBatch(owner, 3, { metadata: { a: 'b' }, now: RESERVE_NOW + 1 }));
    assert.match(batch.id, /^batch_[0-9a-f]{24}$/);
    assert.equal(batch.status, 'in_progress');
    assert.deepEqual(batch.requestCounts, { total: 3, completed: 0, failed: 0 });
    assert.deepEqual(batch.metadata, { a: 'b' });
    assert.equal(await store.getBatch('acct_other', batch.id), null);
    assert.deepEqual(await store.getBatch(null, batch.id), batch);
    const list = await store.listBatches({ accountId: owner, limit: 1, after: null });
    assert.deepEqual([list.batches.map((entry) => entry.id), list.hasMore], [[batch.id], true]);
    const next = await store.listBatches({ accountId: owner, limit: 1, after: batch.id });
    assert.deepEqual([next.batches.map((entry) => entry.id), next.hasMore], [[failed.id], false]);
    await store.cancelBatch(owner, batch.id, RESERVE_NOW + 2);
  });

  test('claims are atomic: concurrent workers get disjoint lines, and a lapsed lease is taken over', async () => {
    const store = context.store();
    const owner = (await fundedAccount(store, 0)).id;
    const batch = await store.createBatch(newBatch(owner, 20));
    const claims = await Promise.all(
      Array.from({ length: 4 }, (_, index) => store.claimBatchLines({ workerId: `w${index}`, limit: 4, nowMs: NOW_MS, leaseMs: 1000 })),
    );
    const taken = claims.flat().map((line) => line.lineIndex);
    assert.equal(taken.length, 16);
    assert.equal(new Set(taken).size, 16, 'no line claimed twice');
    for (const line of claims.flat()) {
      assert.equal(line.attempt, 1);
      assert.equal(line.endpoint, '/v1/chat/completions');
      assert.equal(line.accountId, owner);
      assert.equal(line.body, JSON.stringify({ n: line.lineIndex }));
    }
    const rest = await store.claimBatchLines({ workerId: 'w9', limit: 10, nowMs: NOW_MS, leaseMs: 1000 });
    assert.equal(rest.length, 4);
    // w0 renews its lease; the others lapse and are taken over with a new attempt.
    assert.equal((await store.renewBatchLeases({ workerId: 'w0', nowMs: NOW_MS + 900, leaseMs: 1000 })).length, 4);
    const taken2 = await store.claimBatchLines({ workerId: 'w5', limit: 100, nowMs: NOW_MS + 1500, leaseMs: 1000 });
    assert.equal(taken2.length, 16);
    assert.ok(taken2.every((line) => line.attempt === 2));
    assert.ok(!taken2.some((line) => claims[0].some((mine) => mine.lineIndex === line.lineIndex)), "w0's renewed lines stay w0's");
    assert.equal(await store.completeBatchLine(completion(claims[1][0], 'w1'), null), false, 'the old holder can no longer commit');
    await store.cancelBatch(owner, batch.id, RESERVE_NOW);
  });

  test('a line commits once, with its usage record in the same transaction; a retry gives it back', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id);
    const batch = await store.createBatch(newBatch(account.id, 2, { keyId: key.id }));
    const [first, second] = await store.claimBatchLines({ workerId: 'w', limit: 2, nowMs: NOW_MS, leaseMs: 60_000 });
    assert.equal(await store.reserve({ requestId: 'batch_req_1', accountId: account.id, keyId: key.id, amountMicros: 500, now: RESERVE_NOW, durable: true }), 'reserved');
    const usage = usageRecord({ id: 'batch_req_1', accountId: account.id, keyId: key.id, costMicros: 120, batchId: batch.id });
    assert.equal(await store.completeBatchLine(completion(first, 'w'), usage), true);
    assert.equal(await store.completeBatchLine(completion(first, 'w'), usage), false, 'a second commit writes nothing');
    const records = await store.listUsage({ accountId: account.id, limit: 10, after: null });
    assert.deepEqual(records.records.map((record) => [record.id, record.batchId, record.costMicros]), [['batch_req_1', batch.id, 120]]);
    await assertLedgerInvariant(store, account.id, 0);
    // A commit by a worker that lost the line writes neither its result nor its usage.
    assert.equal(await store.reserve({ requestId: 'batch_req_2', accountId: account.id, keyId: key.id, amountMicros: 500, now: RESERVE_NOW, durable: true }), 'reserved');
    assert.equal(await store.completeBatchLine(completion(second, 'someone-else'), usageRecord({ id: 'batch_req_2', accountId: account.id, costMicros: 1 })), false);
    assert.equal((await store.listUsage({ accountId: account.id, limit: 10, after: null })).records.length, 1);
    await store.release('batch_req_2');
    assert.equal(await store.retryBatchLine({ ...second, workerId: 'w', notBeforeMs: NOW_MS + 5000 }), true);
    assert.deepEqual(await store.claimBatchLines({ workerId: 'w', limit: 5, nowMs: NOW_MS + 1000, leaseMs: 60_000 }), [], 'not before its back-off');
    const [again] = await store.claimBatchLines({ workerId: 'w', limit: 5, nowMs: NOW_MS + 5000, leaseMs: 60_000 });
    assert.deepEqual([again.lineIndex, again.attempt], [1, 2]);
    assert.equal(await store.completeBatchLine(completion(again, 'w', 'failed'), null), true);
    assert.deepEqual((await store.getBatch(null, batch.id))?.requestCounts, { total: 2, completed: 1, failed: 1 });
    assert.ok((await store.finalizeBatches({ now: RESERVE_NOW + 9, limit: 100, render })).includes(batch.id));
    const done = (await store.getBatch(null, batch.id))!;
    assert.equal(done.status, 'completed');
    assert.equal(done.completedAt, RESERVE_NOW + 9);
    assert.equal((await store.getFileContent(account.id, done.outputFileId!))?.toString(), `${JSON.stringify({ line: 0, status: 'succeeded' })}\n`);
    assert.equal((await store.getFileContent(account.id, done.errorFileId!))?.toString(), `${JSON.stringify({ line: 1, status: 'failed' })}\n`);
    assert.ok(!(await store.finalizeBatches({ now: RESERVE_NOW + 10, limit: 100, render })).includes(batch.id), 'finalized once');
  });

  test('cancel ends unanswered lines at once; expiry keeps answered lines and reports the rest', async () => {
    const store = context.store();
    const owner = (await fundedAccount(store, 0)).id;
    const cancelled = await store.createBatch(newBatch(owner, 3));
    const [line] = await store.claimBatchLines({ workerId: 'w', limit: 1, nowMs: NOW_MS, leaseMs: 60_000 });
    assert.equal((await store.cancelBatch(owner, cancelled.id, RESERVE_NOW + 1))?.status, 'cancelling');
    assert.equal(await store.cancelBatch('acct_other', cancelled.id, RESERVE_NOW + 1), null);
    assert.deepEqual(await store.claimBatchLines({ workerId: 'w', limit: 5, nowMs: NOW_MS, leaseMs: 60_000 }), [], 'no new lines');
    assert.deepEqual(await store.renewBatchLeases({ workerId: 'w', nowMs: NOW_MS, leaseMs: 60_000 }), [], 'the running line is ended too');
    assert.equal(await store.completeBatchLine(completion(line, 'w'), null), false);
    assert.ok((await store.finalizeBatches({ now: RESERVE_NOW + 2, limit: 100, render })).includes(cancelled.id));
    const done = (await store.getBatch(owner, cancelled.id))!;
    assert.deepEqual([done.status, done.cancelledAt, done.outputFileId], ['cancelled', RESERVE_NOW + 2, null]);
    assert.equal((await store.getFileContent(owner, done.errorFileId!))?.toString().trim().split('\n').length, 3);

    const expiring = await store.createBatch(newBatch(owner, 3, { expiresAt: RESERVE_NOW + 5 }));
    const [answered] = await store.claimBatchLines({ workerId: 'w', limit: 1, nowMs: NOW_MS, leaseMs: 60_000 });
    assert.equal(await store.completeBatchLine(completion(answered, 'w'), null), true);
    assert.ok(!(await store.expireBatches(RESERVE_NOW + 4)).includes(expiring.id));
    assert.ok((await store.expireBatches(RESERVE_NOW + 5)).includes(expiring.id));
    assert.ok((await store.finalizeBatches({ now: RESERVE_NOW + 6, limit: 100, render })).includes(expiring.id));
    const expired = (await store.getBatch(owner, expiring.id))!;
    assert.deepEqual([expired.status, expired.expiredAt], ['expired', RESERVE_NOW + 5]);
    assert.equal((await store.getFileContent(owner, expired.outputFileId!))?.toString(), `${JSON.stringify({ line: 0, status: 'succeeded' })}\n`);
    assert.deepEqual(
      (await store.getFileContent(owner, expired.errorFileId!))?.toString().trim().split('\n').map((text) => JSON.parse(text)),
      [{ custom_id: 'c1', unanswered: 'expired' }, { custom_id: 'c2', unanswered: 'expired' }],
    );
  });
}

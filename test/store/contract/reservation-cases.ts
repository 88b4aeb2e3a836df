import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReservationRequest } from '../../../src/store/store.js';
import { assertLedgerInvariant, fundedAccount, newKey, requestId, RESERVE_NOW, usageRecord, type StoreContext } from './store-context.js';

function reservation(accountId: string, keyId: string | null, amountMicros: number, now = RESERVE_NOW): ReservationRequest {
  return { requestId: requestId(), accountId, keyId, amountMicros, now };
}

export function reservationCases(context: StoreContext): void {
  test('reserve holds the amount on the account and the key', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 5_000 });
    assert.equal(await store.reserve(reservation(account.id, key.id, 5_000)), 'reserved', 'exactly at the spend limit');
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 5_000);
    assert.equal((await store.getKey(key.id))?.spentMicros, 5_000);
    assert.equal(await store.reserve(reservation(account.id, null, 5_000)), 'reserved', 'exactly the balance, no key');
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 0);
    await assertLedgerInvariant(store, account.id, 10_000);
  });

  test('reserve refuses, changing nothing: insufficient_balance, key_spend_limit, account_inactive', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 3_000 });
    assert.equal(await store.reserve(reservation(account.id, key.id, 10_001)), 'insufficient_balance');
    assert.equal(await store.reserve(reservation(account.id, key.id, 3_001)), 'key_spend_limit');
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 10_000, 'the account debit was rolled back');
    assert.equal((await store.getKey(key.id))?.spentMicros, 0);
    assert.equal(await store.reserve(reservation('acct_missing', null, 1)), 'account_inactive');
    await context.backend.setAccountStatus(context.options(), account.id, 'suspended');
    assert.equal(await store.reserve(reservation(account.id, key.id, 1)), 'account_inactive');
    await context.backend.setAccountStatus(context.options(), account.id, 'active');
    assert.equal(await store.reserve(reservation(account.id, key.id, 1)), 'reserved');
    await assertLedgerInvariant(store, account.id, 1);
  });

  test('reserve throws for a key of another account and for a reused request id, changing nothing', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const stranger = await newKey(store, (await fundedAccount(store, 0)).id);
    await assert.rejects(store.reserve(reservation(account.id, stranger.id, 100)), /has no API key/);
    const first = reservation(account.id, null, 100);
    assert.equal(await store.reserve(first), 'reserved');
    await assert.rejects(store.reserve({ ...first, amountMicros: 200 }));
    await assert.rejects(store.reserve(reservation(account.id, null, -1)), /non-negative safe integer/);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 9_900);
  });

  test('50 concurrent reserves on an account funded for 10: exactly 10 succeed', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10 * 1_000);
    const results = await Promise.all(Array.from({ length: 50 }, () => store.reserve(reservation(account.id, null, 1_000))));
    assert.equal(results.filter((result) => result === 'reserved').length, 10);
    assert.equal(results.filter((result) => result === 'insufficient_balance').length, 40);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 0);
    await assertLedgerInvariant(store, account.id, 10 * 1_000);
  });

  test('50 concurrent reserves on a key limited to 5: exactly 5 succeed', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 100 * 1_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 5 * 1_000 });
    const results = await Promise.all(Array.from({ length: 50 }, () => store.reserve(reservation(account.id, key.id, 1_000))));
    assert.equal(results.filter((result) => result === 'reserved').length, 5);
    assert.equal(results.filter((result) => result === 'key_spend_limit').length, 45);
    assert.equal((await store.getKey(key.id))?.spentMicros, 5 * 1_000);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 95 * 1_000);
  });

  test('settle returns the unused hold, writes the usage record and its ledger entry', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 8_000 });
    const request = reservation(account.id, key.id, 4_000);
    await store.reserve(request);
    const record = usageRecord({ id: request.requestId, accountId: account.id, keyId: key.id, costMicros: 1_500, batchId: 'batch_1' });
    await store.settle(record);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 8_500);
    assert.equal((await store.getKey(key.id))?.spentMicros, 1_500);
    assert.deepEqual(await store.ledgerTotals(account.id), { creditsMicros: 10_000, usageMicros: 1_500 });
    assert.deepEqual((await store.listUsage({ accountId: account.id, limit: 10, after: null })).records, [record]);
    await assertLedgerInvariant(store, account.id, 0);
  });

  test('settle is idempotent, also when raced', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const request = reservation(account.id, null, 4_000);
    await store.reserve(request);
    const record = usageRecord({ id: request.requestId, accountId: account.id, costMicros: 1_000 });
    await Promise.all([store.settle(record), store.settle(record), store.settle(record)]);
    await store.settle(record);
    await store.release(request.requestId);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 9_000);
    assert.equal((await store.listUsage({ accountId: account.id, limit: 10, after: null })).records.length, 1);
    await assertLedgerInvariant(store, account.id, 0);
  });

  test('settle without a reservation does nothing; a cost above the hold throws and keeps the hold', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    await store.settle(usageRecord({ id: requestId(), accountId: account.id, costMicros: 100 }));
    assert.equal((await store.listUsage({ accountId: account.id, limit: 10, after: null })).records.length, 0);
    const request = reservation(account.id, null, 1_000);
    await store.reserve(request);
    await assert.rejects(store.settle(usageRecord({ id: request.requestId, accountId: account.id, costMicros: 1_001 })), /exceeds/);
    await assertLedgerInvariant(store, account.id, 1_000);
    await store.settle(usageRecord({ id: request.requestId, accountId: account.id, costMicros: 1_000 }));
    await assertLedgerInvariant(store, account.id, 0);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 9_000);
  });

  test('settlements made together commit together, and one that fails leaves the others committed', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const requests = [reservation(account.id, null, 1_000), reservation(account.id, null, 1_000), reservation(account.id, null, 1_000)];
    for (const request of requests) await store.reserve(request);
    // Not awaited one by one: on SQLite they share one group commit; the middle one costs more than its hold.
    const results = await Promise.allSettled(
      requests.map((request, index) => store.settle(usageRecord({ id: request.requestId, accountId: account.id, costMicros: index === 1 ? 1_001 : 400 }))),
    );
    assert.deepEqual(results.map((result) => result.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /exceeds/);
    assert.equal((await store.listUsage({ accountId: account.id, limit: 10, after: null })).records.length, 2);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 10_000 - 400 - 1_000 - 400, 'the failed one keeps its hold');
    await assertLedgerInvariant(store, account.id, 1_000);
  });

  test('release returns the whole hold once; a later settle does nothing', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 10_000 });
    const request = reservation(account.id, key.id, 3_000);
    await store.reserve(request);
    await store.release(request.requestId);
    await store.release(request.requestId);
    await store.settle(usageRecord({ id: request.requestId, accountId: account.id, keyId: key.id, costMicros: 3_000 }));
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 10_000);
    assert.equal((await store.getKey(key.id))?.spentMicros, 0);
    assert.deepEqual(await store.ledgerTotals(account.id), { creditsMicros: 10_000, usageMicros: 0 });
  });

  test('releaseStale releases only holds created before the cutoff', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id);
    const old = reservation(account.id, key.id, 1_000, 1_000);
    const recent = reservation(account.id, key.id, 2_000, 5_000);
    await store.reserve(old);
    await store.reserve(recent);
    assert.equal(await store.releaseStale(2_000), 1);
    assert.equal(await store.releaseStale(2_000), 0);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 8_000);
    assert.equal((await store.getKey(key.id))?.spentMicros, 2_000);
    await assertLedgerInvariant(store, account.id, 2_000);
  });

  test('what interactive requests hold is safe from a batch line\'s hold and from a debit of credits', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 7_000 });
    const interactive = reservation(account.id, key.id, 6_000);
    assert.equal(await store.reserve(interactive), 'reserved');
    assert.equal(await store.reserve({ ...reservation(account.id, null, 4_001), durable: true }), 'insufficient_balance');
    assert.equal(await store.reserve({ ...reservation(account.id, key.id, 1_001), durable: true }), 'key_spend_limit');
    assert.equal(await store.addCredits({ accountId: account.id, amountMicros: -4_001, note: null, now: RESERVE_NOW }), null, 'would take held funds');
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 4_000);
    const batchLine = { ...reservation(account.id, key.id, 1_000), durable: true };
    assert.equal(await store.reserve(batchLine), 'reserved');
    assert.equal((await store.addCredits({ accountId: account.id, amountMicros: -3_000, note: null, now: RESERVE_NOW }))?.balanceMicros, 0);
    assert.equal(await store.reserve(reservation(account.id, null, 1)), 'insufficient_balance');
    assert.equal((await store.getKey(key.id))?.spentMicros, 7_000);
    await store.settle(usageRecord({ id: interactive.requestId, accountId: account.id, keyId: key.id, costMicros: 2_500 }));
    await store.release(batchLine.requestId);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 4_500);
    assert.equal((await store.getKey(key.id))?.spentMicros, 2_500);
    await assertLedgerInvariant(store, account.id, 0);
  });

  test('a concurrent mix of reserves, settles and releases keeps the ledger invariant', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 1_000_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 600_000 });
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, async (_, index) => {
        const request = reservation(account.id, index % 2 === 0 ? key.id : null, 25_000);
        if ((await store.reserve(request)) !== 'reserved') return { open: 0, keyOpen: 0, keyUsage: 0 };
        const keyHeld = request.keyId === null ? 0 : 25_000;
        if (index % 3 === 0) return { open: 25_000, keyOpen: keyHeld, keyUsage: 0 };
        if (index % 3 === 1) {
          await store.release(request.requestId);
          return { open: 0, keyOpen: 0, keyUsage: 0 };
        }
        const cost = 1_000 * (index % 25);
        const record = usageRecord({ id: request.requestId, accountId: account.id, keyId: request.keyId, costMicros: cost });
        await Promise.all([store.settle(record), store.settle(record)]);
        return { open: 0, keyOpen: 0, keyUsage: request.keyId === null ? 0 : cost };
      }),
    );
    const sum = (pick: (outcome: (typeof outcomes)[number]) => number) => outcomes.reduce((total, outcome) => total + pick(outcome), 0);
    await assertLedgerInvariant(store, account.id, sum((outcome) => outcome.open));
    const spent = (await store.getKey(key.id))?.spentMicros;
    assert.equal(spent, sum((outcome) => outcome.keyOpen + outcome.keyUsage));
    assert.ok(spent !== undefined && spent <= 600_000);
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fundedAccount, RESERVE_NOW, type StoreContext } from './store-context.js';

export function accountsCases(context: StoreContext): void {
  test('createAccount, getAccount and listAccounts', async () => {
    const store = context.store();
    const first = await store.createAccount({ name: 'first', now: 1_600_000_000 });
    const second = await store.createAccount({ name: 'second', now: 1_600_000_001 });
    assert.match(first.id, /^acct_[0-9a-f]{24}$/);
    assert.deepEqual(first, {
      id: first.id,
      name: 'first',
      status: 'active',
      balanceMicros: 0,
      createdAt: 1_600_000_000,
      limits: { rpm: null, tpm: null, maxConcurrency: null },
    });
    assert.deepEqual(await store.getAccount(first.id), first);
    assert.equal(await store.getAccount('acct_missing'), null);
    const ids = (await store.listAccounts()).map((account) => account.id);
    assert.ok(ids.indexOf(first.id) >= 0 && ids.indexOf(first.id) < ids.indexOf(second.id), 'listed oldest first');
  });

  test('account limits: set at creation, replaced by setAccountLimits, null for a missing account', async () => {
    const store = context.store();
    const limits = { rpm: 60, tpm: 100_000, maxConcurrency: null };
    const account = await store.createAccount({ name: 'limited', now: 1_600_000_000, limits });
    assert.deepEqual((await store.getAccount(account.id))?.limits, limits);
    const changed = await store.setAccountLimits(account.id, { rpm: null, tpm: null, maxConcurrency: 4 });
    assert.deepEqual(changed?.limits, { rpm: null, tpm: null, maxConcurrency: 4 });
    assert.deepEqual((await store.getAccount(account.id))?.limits, { rpm: null, tpm: null, maxConcurrency: 4 });
    assert.equal(await store.setAccountLimits('acct_missing', limits), null);
  });

  test('addCredits moves the balance and writes a credit entry', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 0);
    const credited = await store.addCredits({ accountId: account.id, amountMicros: 5_000_000, note: 'top-up', now: RESERVE_NOW });
    assert.equal(credited?.balanceMicros, 5_000_000);
    const debited = await store.addCredits({ accountId: account.id, amountMicros: -5_000_000, note: 'refund', now: RESERVE_NOW });
    assert.equal(debited?.balanceMicros, 0, 'a debit down to exactly zero is allowed');
    assert.deepEqual(await store.ledgerTotals(account.id), { creditsMicros: 0, usageMicros: 0 });
  });

  test('addCredits refuses a debit below zero and a missing account, changing nothing', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 1_000);
    assert.equal(await store.addCredits({ accountId: account.id, amountMicros: -1_001, note: null, now: RESERVE_NOW }), null);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 1_000);
    assert.deepEqual(await store.ledgerTotals(account.id), { creditsMicros: 1_000, usageMicros: 0 });
    assert.equal(await store.addCredits({ accountId: 'acct_missing', amountMicros: 1, note: null, now: RESERVE_NOW }), null);
    assert.deepEqual(await store.ledgerTotals('acct_missing'), { creditsMicros: 0, usageMicros: 0 });
  });

  test('money stays exact up to MAX_SAFE_INTEGER and fails loudly past it', async () => {
    const store = context.store();
    const account = await fundedAccount(store, Number.MAX_SAFE_INTEGER);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, Number.MAX_SAFE_INTEGER);
    await assert.rejects(store.addCredits({ accountId: account.id, amountMicros: 1, note: null, now: RESERVE_NOW }), /safe/);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, Number.MAX_SAFE_INTEGER, 'rolled back');
    await assert.rejects(store.addCredits({ accountId: account.id, amountMicros: 0.5, note: null, now: RESERVE_NOW }), /safe integer/);
  });
}

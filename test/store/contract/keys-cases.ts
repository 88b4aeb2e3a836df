import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fundedAccount, newKey, newKeyInput, RESERVE_NOW, type StoreContext } from './store-context.js';

export function keysCases(context: StoreContext): void {
  test('createKey stores every field; getKey and findKeyByHash read it back', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 0);
    const input = newKeyInput(account.id, {
      name: 'limited',
      models: ['stories-260k', 'qwen'],
      rpm: 60,
      tpm: 100_000,
      maxConcurrency: 4,
      spendLimitMicros: 2_000_000,
      expiresAt: RESERVE_NOW + 3600,
    });
    const key = await store.createKey(input);
    assert.match(key.id, /^key_[0-9a-f]{24}$/);
    assert.deepEqual(key, {
      id: key.id,
      accountId: account.id,
      name: 'limited',
      prefix: input.prefix,
      createdAt: RESERVE_NOW,
      lastUsedAt: null,
      expiresAt: RESERVE_NOW + 3600,
      revokedAt: null,
      spentMicros: 0,
      models: ['stories-260k', 'qwen'],
      rpm: 60,
      tpm: 100_000,
      maxConcurrency: 4,
      spendLimitMicros: 2_000_000,
    });
    assert.deepEqual(await store.getKey(key.id), key);
    assert.deepEqual(await store.findKeyByHash(input.secretHash), key);
    assert.equal(await store.getKey('key_missing'), null);
    assert.equal(await store.findKeyByHash('0'.repeat(64)), null);
  });

  test('findKeyWithAccountByHash returns the key and its account in one read', async () => {
    const store = context.store();
    const account = await store.createAccount({ name: 'joined', now: RESERVE_NOW, limits: { rpm: 5, tpm: null, maxConcurrency: 2 } });
    await store.addCredits({ accountId: account.id, amountMicros: 1234, note: null, now: RESERVE_NOW });
    const input = newKeyInput(account.id, { name: 'joined-key', rpm: 7 });
    const key = await store.createKey(input);
    assert.deepEqual(await store.findKeyWithAccountByHash(input.secretHash), { key, account: await store.getAccount(account.id) });
    assert.equal(await store.findKeyWithAccountByHash('0'.repeat(64)), null);
  });

  test('a secret hash is unique, and a key needs an existing account', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 0);
    const input = newKeyInput(account.id);
    await store.createKey(input);
    await assert.rejects(store.createKey({ ...input, name: 'again' }));
    await assert.rejects(store.createKey(newKeyInput('acct_missing')));
  });

  test('listKeys lists one account, oldest first', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 0);
    const other = await fundedAccount(store, 0);
    const first = await store.createKey({ ...newKeyInput(account.id), now: 100 });
    const second = await store.createKey({ ...newKeyInput(account.id), now: 200 });
    await newKey(store, other.id);
    assert.deepEqual((await store.listKeys(account.id)).map((key) => key.id), [first.id, second.id]);
    assert.deepEqual(await store.listKeys('acct_missing'), []);
  });

  test('revokeKey keeps the first revocation; revoked and expired keys are still found by hash', async () => {
    const store = context.store();
    const account = await fundedAccount(store, 0);
    const input = newKeyInput(account.id, { expiresAt: 10 });
    const key = await store.createKey(input);
    assert.equal(await store.revokeKey(key.id, RESERVE_NOW + 5), true);
    assert.equal(await store.revokeKey(key.id, RESERVE_NOW + 9), true);
    assert.equal(await store.revokeKey('key_missing', RESERVE_NOW), false);
    const found = await store.findKeyByHash(input.secretHash);
    assert.equal(found?.revokedAt, RESERVE_NOW + 5);
    assert.equal(found?.expiresAt, 10);
  });

  test('touchKey sets lastUsedAt; a missing key is ignored', async () => {
    const store = context.store();
    const key = await newKey(store, (await fundedAccount(store, 0)).id);
    await store.touchKey(key.id, RESERVE_NOW + 42);
    assert.equal((await store.getKey(key.id))?.lastUsedAt, RESERVE_NOW + 42);
    await store.touchKey('key_missing', RESERVE_NOW);
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyCache, type KeyWithAccount } from '../../src/core/accounts/key-cache.js';

function found(keyId: string, accountId: string): KeyWithAccount {
  return {
    key: { id: keyId, accountId, name: 'k', prefix: 'tm-', createdAt: 0, lastUsedAt: null, expiresAt: null, revokedAt: null, spentMicros: 0, models: null, rpm: null, tpm: null, maxConcurrency: null, spendLimitMicros: null },
    account: { id: accountId, name: 'a', status: 'active', limits: { rpm: null, tpm: null, maxConcurrency: null }, balanceMicros: 0, createdAt: 0 },
  };
}

test('an entry is used for ttlMs, then looked up again', () => {
  let now = 1_000;
  const cache = new KeyCache(500, () => now);
  const entry = found('key_1', 'acct_1');
  assert.equal(cache.get('hash'), null);
  cache.put('hash', entry, cache.generation);
  assert.equal(cache.get('hash'), entry);
  now += 499;
  assert.equal(cache.get('hash'), entry);
  now += 1;
  assert.equal(cache.get('hash'), null);
});

test('ttlMs 0 keeps nothing', () => {
  const cache = new KeyCache(0, () => 0);
  cache.put('hash', found('key_1', 'acct_1'), cache.generation);
  assert.equal(cache.get('hash'), null);
});

test('forgetKey and forgetAccount drop the entries they name, and only those', () => {
  const cache = new KeyCache(60_000, () => 0);
  cache.put('a', found('key_a', 'acct_1'), cache.generation);
  cache.put('b', found('key_b', 'acct_1'), cache.generation);
  cache.put('c', found('key_c', 'acct_2'), cache.generation);
  cache.forgetKey('key_a');
  assert.equal(cache.get('a'), null);
  assert.notEqual(cache.get('b'), null);
  cache.forgetAccount('acct_1');
  assert.equal(cache.get('b'), null);
  assert.notEqual(cache.get('c'), null);
});

test('a lookup that began before a forget does not cache what it read', () => {
  const cache = new KeyCache(60_000, () => 0);
  const generation = cache.generation; // the lookup starts
  cache.forgetKey('key_a'); // the key is revoked meanwhile
  cache.put('a', found('key_a', 'acct_1'), generation); // the lookup ends with what it read before
  assert.equal(cache.get('a'), null);
  cache.put('a', found('key_a', 'acct_1'), cache.generation);
  assert.notEqual(cache.get('a'), null);
});

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-key-cache-test-0123456789abcdef';
const TTL_MS = 1000;

/**
 * The key cache (auth.key_cache_ttl_ms): a change made outside this process (another instance, or by hand in the
 * database, as here) applies within the TTL; one made through this process's admin API applies to the next request.
 */
describe('key cache', () => {
  let server: TestServer;
  let database: BetterSqlite3.Database;
  const admin = (method: string, url: string, body?: unknown) => rawRequest(server.url, method, url, body, { authorization: `Bearer ${ADMIN_KEY}` });
  const chat = (key: string, model = STORIES) =>
    rawRequest(server.url, 'POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }, { authorization: `Bearer ${key}` });

  async function newKey(options: Record<string, unknown> = {}): Promise<{ id: string; key: string; accountId: string }> {
    const account = await admin('POST', '/v1/admin/accounts', { name: `acct-${Math.random()}`, credits_usd: 1 });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k', ...options });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    return { id: key.body.id, key: key.body.key, accountId: account.body.id };
  }

  /** Polls until `request` answers `status`; returns how long that took, ms. */
  async function until(status: number, request: () => Promise<{ status: number }>): Promise<number> {
    const started = Date.now();
    while ((await request()).status !== status) {
      assert.ok(Date.now() - started < 10 * TTL_MS, `still not ${status} after ${Date.now() - started} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return Date.now() - started;
  }

  before(async () => {
    server = await startTestServer({ auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false, key_cache_ttl_ms: TTL_MS } });
    // A second connection to the server's database: what another instance, or an operator, would change.
    database = new BetterSqlite3(path.join(server.config.storage.data_dir, 'tokenmill.db'));
    database.pragma('busy_timeout = 5000');
  });
  after(async () => {
    database.close();
    await server.close();
  });

  test('a key revoked through the admin API is refused at once, though it was cached', async () => {
    const key = await newKey();
    assert.equal((await chat(key.key)).status, 200);
    assert.equal((await admin('DELETE', `/v1/admin/keys/${key.id}`)).status, 200);
    const refused = await chat(key.key);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'invalid_api_key');
  });

  test('a key revoked in the database (by another instance) is refused within key_cache_ttl_ms', async () => {
    const key = await newKey();
    assert.equal((await chat(key.key)).status, 200);
    const revokedAt = Date.now();
    database.prepare('update api_keys set revoked_at = ? where id = ?').run(Math.floor(revokedAt / 1000), key.id);
    await until(401, () => chat(key.key));
    assert.ok(Date.now() - revokedAt <= TTL_MS + 500, `refused only after ${Date.now() - revokedAt} ms`);
  });

  test("a key's allow-list changed in the database applies within key_cache_ttl_ms", async () => {
    const key = await newKey({ models: [STORIES] });
    assert.equal((await chat(key.key, TINY_RANDOM)).status, 404);
    const changedAt = Date.now();
    database.prepare('update api_keys set models = ? where id = ?').run(JSON.stringify([TINY_RANDOM]), key.id);
    await until(200, () => chat(key.key, TINY_RANDOM));
    assert.equal((await chat(key.key, STORIES)).status, 404);
    assert.ok(Date.now() - changedAt <= TTL_MS + 500, `applied only after ${Date.now() - changedAt} ms`);
  });

  test("an account's limits changed through the admin API apply to the next request", async () => {
    const key = await newKey();
    assert.equal((await chat(key.key)).status, 200);
    assert.equal((await admin('PATCH', `/v1/admin/accounts/${key.accountId}`, { rpm: 1 })).status, 200);
    assert.equal((await chat(key.key)).status, 200);
    const limited = await chat(key.key);
    assert.equal(limited.status, 429, JSON.stringify(limited.body));
  });

  test('unknown keys are not cached: a key created meanwhile works at once', async () => {
    const key = await newKey();
    assert.equal((await chat(`${key.key}x`)).status, 401);
    assert.equal((await chat(key.key)).status, 200);
  });
});

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { postgresBackend } from '../store/store-backends.js';
import { spawnServer, STORIES } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-multi-instance-0123456789abcdef';
const redisUrl = process.env.TOKENMILL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_CACHE_TTL_MS = 500;

/**
 * Two server processes sharing one PostgreSQL database and one Redis, as a scaled-out deployment runs:
 * limits hold across both, revocation on one is seen by the other (within the key cache's TTL), and no secret reaches
 * either log.
 */
describe('two instances on PostgreSQL and Redis', () => {
  const backend = postgresBackend();
  const servers: Array<{ child: ChildProcess; url: string; output: () => string }> = [];
  const secrets: string[] = [ADMIN_KEY];
  const admin = (method: string, path: string, body?: unknown) =>
    rawRequest(servers[0].url, method, path, body, { authorization: `Bearer ${ADMIN_KEY}` });
  const chat = (index: number, key: string) =>
    rawRequest(
      servers[index].url,
      'POST',
      '/v1/chat/completions',
      { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 },
      { authorization: `Bearer ${key}` },
    );

  async function newKey(options: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const account = await admin('POST', '/v1/admin/accounts', { name: 'shared', credits_usd: 5 });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k', ...options });
    assert.equal(key.status, 201);
    secrets.push(key.body.key);
    return key.body;
  }

  before(async () => {
    const { databaseUrl } = await backend.prepare();
    const env = {
      TOKENMILL_AUTH: 'on',
      TOKENMILL_ADMIN_KEY: ADMIN_KEY,
      DATABASE_URL: databaseUrl!,
      REDIS_URL: redisUrl,
      TOKENMILL_LOG_LEVEL: 'trace',
      TOKENMILL_KEY_CACHE_TTL_MS: String(KEY_CACHE_TTL_MS),
    };
    // Both start at once: migrations and the first-start bootstrap must cope.
    servers.push(...(await Promise.all([spawnServer([], env), spawnServer([], env)])));
  });

  after(async () => {
    for (const server of servers) server.child.kill('SIGKILL');
    await backend.cleanup();
  });

  test('the first start ran once: one default account', async () => {
    const accounts = await admin('GET', '/v1/admin/accounts');
    assert.equal(accounts.body.data.filter((account: { name: string }) => account.name === 'default').length, 1);
  });

  test('together the instances never admit more than the rpm limit', async () => {
    const key = await newKey({ rpm: 5 });
    const responses = await Promise.all(Array.from({ length: 12 }, (_, index) => chat(index % 2, key.key)));
    const statuses = responses.map((response) => response.status).sort();
    assert.equal(statuses.filter((status) => status === 200).length, 5, statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, 7, statuses.join(','));
  });

  test('a key revoked through one instance is refused by it at once, by the other within key_cache_ttl_ms', async () => {
    const key = await newKey({});
    assert.equal((await chat(0, key.key)).status, 200);
    assert.equal((await chat(1, key.key)).status, 200);
    const revokedAt = Date.now();
    assert.equal((await admin('DELETE', `/v1/admin/keys/${key.id}`)).status, 200);
    const refused = await chat(0, key.key);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'invalid_api_key');
    // The other instance may answer from its key cache until the entry is older than the TTL.
    while ((await chat(1, key.key)).status !== 401) {
      assert.ok(Date.now() - revokedAt <= KEY_CACHE_TTL_MS + 1000, 'the other instance still accepts the revoked key');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  test('usage recorded by both instances lands in one ledger', async () => {
    const key = await newKey({});
    await chat(0, key.key);
    await chat(1, key.key);
    // Records are settled right after each response is sent: poll briefly.
    let records;
    for (let attempt = 0; attempt < 50; attempt++) {
      records = await rawRequest(servers[1].url, 'GET', '/v1/usage/requests', undefined, { authorization: `Bearer ${key.key}` });
      if (records.body.data.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(records!.body.data.length, 2);
  });

  test('no secret appears in either log', () => {
    for (const server of servers) {
      const output = server.output();
      assert.ok(output.length > 0);
      for (const secret of secrets) assert.ok(!output.includes(secret), 'a secret was logged');
    }
  });
});

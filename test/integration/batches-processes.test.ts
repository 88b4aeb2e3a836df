import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import OpenAI, { toFile } from 'openai';
import pg from 'pg';
import { spawnServer } from '../helpers/test-server.js';
import { postgresBackend } from '../store/store-backends.js';
import { chatLine, jsonl, readLines, waitFor } from '../helpers/batch-lines.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-batch-processes-0123456789ab';

type Server = { child: ChildProcess; url: string; output: () => string };

/** Short leases and polls, so that a dead instance's lines are taken over within a second. */
const BATCH_ENV = { TOKENMILL_AUTH: 'on', TOKENMILL_ADMIN_KEY: ADMIN_KEY, TOKENMILL_BATCH_LEASE_MS: '1000', TOKENMILL_BATCH_POLL_INTERVAL_MS: '100' };

async function newClient(url: string): Promise<{ accountId: string; key: string; client: (url: string) => OpenAI }> {
  const admin = (method: string, route: string, body?: unknown) => rawRequest(url, method, route, body, { authorization: `Bearer ${ADMIN_KEY}` });
  const account = await admin('POST', '/v1/admin/accounts', { name: 'batch', credits_usd: 50 });
  const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { accountId: account.body.id, key: key.body.key, client: (base) => new OpenAI({ baseURL: `${base}/v1`, apiKey: key.body.key, maxRetries: 0 }) };
}

async function createBatch(client: OpenAI, lines: unknown[]): Promise<string> {
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'input.jsonl'), purpose: 'batch' });
  const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  return batch.id;
}

/** Every input line answered exactly once, and billed exactly once with the batch id. */
async function assertExactlyOnce(url: string, key: string, client: OpenAI, batchId: string, count: number): Promise<void> {
  const batch = await waitFor(client, batchId, ['completed'], 60_000);
  assert.deepEqual(batch.request_counts, { total: count, completed: count, failed: 0 });
  const output = await readLines(client, batch.output_file_id);
  assert.equal(batch.error_file_id, null);
  assert.deepEqual(output.map((line) => line.custom_id), Array.from({ length: count }, (_, index) => `line-${index}`));
  const usage = await rawRequest(url, 'GET', '/v1/usage/requests?limit=1000', undefined, { authorization: `Bearer ${key}` });
  const records = usage.body.data.filter((record: { batch_id: string }) => record.batch_id === batchId);
  assert.equal(records.length, count, 'one usage record per line');
  assert.deepEqual(new Set(records.map((record: { id: string }) => record.id)), new Set(output.map((line) => line.response.request_id)));
}

/** No hold is left open: the balance is the credits minus what was billed (a killed run's hold was released). */
async function assertNoOpenHolds(url: string, accountId: string): Promise<void> {
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  const account = await rawRequest(url, 'GET', `/v1/admin/accounts/${accountId}`, undefined, admin);
  const usage = await rawRequest(url, 'GET', `/v1/usage?account_id=${accountId}`, undefined, admin);
  const billed = usage.body.data.reduce((sum: number, row: { cost_micros: number }) => sum + row.cost_micros, 0);
  assert.equal(account.body.balance_micros, 50_000_000 - billed);
}

const slowLines = (count: number) => Array.from({ length: count }, (_, index) => chatLine(`line-${index}`, { max_tokens: 120, ignore_eos: true }));

describe('batch durability across processes', () => {
  const servers: Server[] = [];
  const backend = postgresBackend();
  after(async () => {
    for (const server of servers) server.child.kill('SIGKILL');
    await backend.cleanup();
  });

  test('SIGKILL in the middle of a batch: after a restart every line is answered and billed exactly once', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tokenmill-batch-kill-'));
    const env = { ...BATCH_ENV, TOKENMILL_DATA_DIR: dataDir };
    const first = await spawnServer([], env);
    servers.push(first);
    const { accountId, key, client } = await newClient(first.url);
    const batchId = await createBatch(client(first.url), slowLines(40));
    const until = Date.now() + 30_000;
    while ((await client(first.url).batches.retrieve(batchId)).request_counts!.completed < 5) {
      assert.ok(Date.now() < until, 'the batch did not start');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const database = new BetterSqlite3(path.join(dataDir, 'tokenmill.db'), { readonly: true });
    const running = database.prepare(`select count(*) as n from batch_lines where batch_id = ? and status = 'running'`).get(batchId) as { n: number };
    database.close();
    assert.ok(running.n > 0, 'lines were running when the server was killed');

    const second = await spawnServer([], env);
    servers.push(second);
    await assertExactlyOnce(second.url, key, client(second.url), batchId, 40);
    await assertNoOpenHolds(second.url, accountId);
    const reopened = new BetterSqlite3(path.join(dataDir, 'tokenmill.db'), { readonly: true });
    const retried = reopened.prepare('select count(*) as n from batch_lines where batch_id = ? and attempt > 1').get(batchId) as { n: number };
    reopened.close();
    assert.ok(retried.n >= running.n, 'the lines cut by the kill ran again');
  });

  test('two instances on PostgreSQL share one batch without running or billing a line twice', async () => {
    const { databaseUrl } = await backend.prepare();
    // A long lease: no instance dies here, so no line may be taken over (a 1 s lease can lapse on a loaded machine).
    const env = { ...BATCH_ENV, DATABASE_URL: databaseUrl!, TOKENMILL_BATCH_LEASE_MS: '10000' };
    const pair = await Promise.all([spawnServer([], env), spawnServer([], env)]);
    servers.push(...pair);
    const { key, client } = await newClient(pair[0].url);
    const batchId = await createBatch(client(pair[0].url), slowLines(60));
    await assertExactlyOnce(pair[1].url, key, client(pair[1].url), batchId, 60);
    const database = new pg.Client({ connectionString: databaseUrl! });
    await database.connect();
    try {
      const { rows } = await database.query<{ workers: string; attempts: string }>(
        'select count(distinct worker_id) as workers, max(attempt) as attempts from batch_lines where batch_id = $1',
        [batchId],
      );
      assert.equal(Number(rows[0].workers), 2, 'both instances ran lines');
      assert.equal(Number(rows[0].attempts), 1, 'no line was claimed twice');
    } finally {
      await database.end();
    }
  });
});

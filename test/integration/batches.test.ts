import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import path from 'node:path';
import { modelsDir, startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { chatLine, jsonl, readLines, waitFor } from '../helpers/batch-lines.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-batch-test-0123456789abcdef';

async function upload(client: OpenAI, text: string): Promise<string> {
  const file = await client.files.create({ file: await toFile(Buffer.from(text), 'input.jsonl'), purpose: 'batch' });
  return file.id;
}

describe('Files and Batch APIs with accounts (SQLite)', () => {
  let server: TestServer;
  const admin = (method: string, path: string, body?: unknown) => rawRequest(server.url, method, path, body, { authorization: `Bearer ${ADMIN_KEY}` });

  async function newClient(credits: number, keyOptions: Record<string, unknown> = {}) {
    const account = await admin('POST', '/v1/admin/accounts', { name: `batch-${Math.random()}`, credits_usd: credits });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k', ...keyOptions });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    return { accountId: account.body.id as string, keyId: key.body.id as string, key: key.body.key as string, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key.body.key, maxRetries: 0 }) };
  }

  before(async () => {
    server = await startTestServer({
      auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
      // Few lines at once, so that lines are still waiting when a test revokes the batch's key.
      batches: { poll_interval_ms: 100, concurrency: 4 },
      files: { max_bytes: 64 * 1024 },
    });
  });
  after(() => server.close());

  test('the openai client uploads a file, creates a batch, polls it and downloads the results', async () => {
    const { client } = await newClient(5);
    const lines = Array.from({ length: 12 }, (_, index) => chatLine(`request-${index}`));
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'requests.jsonl'), purpose: 'batch' });
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.filename, 'requests.jsonl');
    assert.equal(file.bytes, Buffer.byteLength(jsonl(lines)));
    assert.match(file.id, /^file-/);
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    assert.equal(await (await client.files.content(file.id)).text(), jsonl(lines));

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { purpose: 'test' },
    });
    assert.equal(created.object, 'batch');
    assert.ok(['validating', 'in_progress'].includes(created.status));
    assert.deepEqual(created.metadata, { purpose: 'test' });
    assert.equal(created.request_counts?.total, 12);
    assert.equal(created.expires_at! - created.created_at, 86_400);

    const batch = await waitFor(client, created.id, ['completed', 'failed']);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 12, completed: 12, failed: 0 });
    assert.ok(batch.completed_at && batch.in_progress_at && batch.finalizing_at);
    assert.equal(batch.error_file_id, null);
    const output = await readLines(client, batch.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id), lines.map((line) => line.custom_id), 'one line per request, in input order');
    for (const line of output) {
      assert.equal(line.response.status_code, 200);
      assert.equal(line.error, null);
      assert.equal(line.response.body.object, 'chat.completion');
      assert.equal(line.response.body.choices[0].message.role, 'assistant');
      assert.match(line.response.request_id, /^batch_req_/);
    }
    const listed = await client.batches.list({ limit: 10 });
    assert.ok(listed.data.some((entry) => entry.id === batch.id));
  });

  test('discounted billing: every line is one usage record with the batch id, at half price', async () => {
    const { client, key } = await newClient(5);
    const input = await upload(client, jsonl([chatLine('a'), chatLine('b'), chatLine('c')]));
    const batch = await waitFor(client, (await client.batches.create({ input_file_id: input, endpoint: '/v1/chat/completions', completion_window: '24h' })).id, ['completed']);
    const usage = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { authorization: `Bearer ${key}` });
    const records = usage.body.data.filter((record: { batch_id: string | null }) => record.batch_id === batch.id);
    assert.equal(records.length, 3, JSON.stringify(usage.body));
    const prices = server.config.models.find((model) => model.id === STORIES)!.prices;
    for (const record of records) {
      const full = (record.prompt_tokens - record.cached_tokens) * prices.input + record.cached_tokens * (prices.cached_input ?? prices.input) + record.completion_tokens * prices.output;
      assert.equal(record.cost_micros, Math.round(full / 2), JSON.stringify(record));
      assert.match(record.id, /^batch_req_/);
    }
    const output = await readLines(client, batch.output_file_id);
    assert.deepEqual(new Set(output.map((line) => line.response.request_id)), new Set(records.map((record: { id: string }) => record.id)));
  });

  test('a bad input file fails the batch with its errors listed by line', async () => {
    const { client } = await newClient(1);
    const text = jsonl([
      chatLine('ok'),
      'not json',
      { ...chatLine('m'), method: 'GET' },
      { ...chatLine('u'), url: '/v1/embeddings' },
      chatLine('ok'),
      { method: 'POST', url: '/v1/chat/completions', body: {} },
      { custom_id: 'nobody', method: 'POST', url: '/v1/chat/completions' },
    ]);
    const batch = await client.batches.create({ input_file_id: await upload(client, text), endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(batch.status, 'failed');
    assert.ok(batch.failed_at);
    const errors = batch.errors!.data!.map((error) => [error.line, error.code]);
    assert.deepEqual(errors, [
      [2, 'invalid_json_line'],
      [3, 'invalid_method'],
      [4, 'mismatched_url'],
      [5, 'duplicate_custom_id'],
      [6, 'missing_required_parameter'],
      [7, 'missing_required_parameter'],
    ]);
    const empty = await client.batches.create({ input_file_id: await upload(client, '\n'), endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(empty.status, 'failed');
    assert.equal(empty.errors!.data![0].code, 'empty_file');
  });

  test('request validation: unknown file, wrong endpoint or window, file of another account', async () => {
    const { client } = await newClient(1);
    const other = await newClient(1);
    const input = await upload(client, jsonl([chatLine('x')]));
    await assert.rejects(client.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }), { status: 404 });
    await assert.rejects(client.batches.create({ input_file_id: input, endpoint: '/v1/responses' as '/v1/chat/completions', completion_window: '24h' }), { status: 400 });
    await assert.rejects(client.batches.create({ input_file_id: input, endpoint: '/v1/chat/completions', completion_window: '1h' as '24h' }), { status: 400 });
    await assert.rejects(other.client.batches.create({ input_file_id: input, endpoint: '/v1/chat/completions', completion_window: '24h' }), { status: 404 });
    await assert.rejects(other.client.files.retrieve(input), { status: 404 });
    await assert.rejects(other.client.files.content(input), { status: 404 });
    assert.ok(!(await other.client.files.list()).data.some((file) => file.id === input), 'files are invisible to other accounts');
    const batch = await client.batches.create({ input_file_id: input, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await assert.rejects(other.client.batches.retrieve(batch.id), { status: 404 });
    await waitFor(client, batch.id, ['completed']);
    const second = await client.batches.create({ input_file_id: input, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const page = await client.batches.list({ limit: 1 });
    assert.deepEqual([page.data.map((entry) => entry.id), page.has_more], [[second.id], true], 'newest first');
    const next = await client.batches.list({ limit: 1, after: second.id });
    assert.deepEqual([next.data.map((entry) => entry.id), next.has_more], [[batch.id], false]);
    assert.equal((await other.client.batches.list()).data.length, 0);
    await waitFor(client, second.id, ['completed']);
  });

  test('files: list with pagination, delete, the size limit', async () => {
    const { client } = await newClient(1);
    const ids = [];
    for (let index = 0; index < 3; index++) ids.push(await upload(client, jsonl([chatLine(`f${index}`)])));
    const first = await rawRequest(server.url, 'GET', '/v1/files?limit=2', undefined, { authorization: `Bearer ${(client as OpenAI).apiKey}` });
    assert.equal(first.body.data.length, 2);
    assert.equal(first.body.has_more, true);
    const second = await rawRequest(server.url, 'GET', `/v1/files?limit=2&after=${first.body.last_id}`, undefined, { authorization: `Bearer ${client.apiKey}` });
    assert.equal(second.body.data.length, 1);
    assert.equal(second.body.has_more, false);
    assert.deepEqual(new Set([...first.body.data, ...second.body.data].map((file: { id: string }) => file.id)), new Set(ids));
    const deleted = await client.files.delete(ids[0]);
    assert.deepEqual(deleted, { id: ids[0], object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(ids[0]), { status: 404 });
    await assert.rejects(client.files.create({ file: await toFile(Buffer.alloc(65 * 1024, 'a'), 'big.jsonl'), purpose: 'batch' }), (error: any) => {
      assert.equal(error.status, 413);
      assert.equal(error.code, 'file_too_large');
      return true;
    });
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from('{}'), 'x.jsonl'), purpose: 'nope' as 'batch' }), { status: 400 });
  });

  test('per-line errors go to the error file and the other lines go on', async () => {
    const { client } = await newClient(5, { models: [STORIES] });
    const lines = [
      chatLine('good-1'),
      chatLine('unknown-model', { model: 'no-such-model' }),
      chatLine('bad-parameter', { temperature: 7 }),
      chatLine('forbidden-model', { model: TINY_RANDOM }),
      chatLine('good-2'),
    ];
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitFor(client, created.id, ['completed']);
    assert.deepEqual(batch.request_counts, { total: 5, completed: 2, failed: 3 });
    const output = await readLines(client, batch.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id), ['good-1', 'good-2']);
    const errors = await readLines(client, batch.error_file_id);
    assert.deepEqual(
      errors.map((line) => [line.custom_id, line.response.status_code, line.response.body.error.code]),
      [
        ['unknown-model', 404, 'model_not_found'],
        ['bad-parameter', 400, 'invalid_value'],
        ['forbidden-model', 404, 'model_not_found'],
      ],
    );
  });

  test('funds are reserved per line: a batch never overspends the account', async () => {
    // Each line holds about 20 micro-USD (100 output tokens at half of 0.4 USD per 1M); the account has 50.
    const { client, accountId } = await newClient(0.00005);
    const lines = Array.from({ length: 10 }, (_, index) => chatLine(`r${index}`, { max_tokens: 100 }));
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitFor(client, created.id, ['completed']);
    assert.equal(batch.request_counts!.total, 10);
    const errors = await readLines(client, batch.error_file_id);
    assert.ok(errors.length > 0, 'some lines were refused for funds');
    for (const line of errors) assert.equal(line.response.body.error.code, 'insufficient_quota');
    const account = await admin('GET', `/v1/admin/accounts/${accountId}`);
    assert.ok(account.body.balance_micros >= 0);
  });

  test('a batch acts for its key: once the key is revoked, its remaining lines fail with invalid_api_key', async () => {
    const { client, keyId, accountId } = await newClient(5);
    const lines = Array.from({ length: 30 }, (_, index) => chatLine(`k${index}`, { max_tokens: 200, ignore_eos: true }));
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    while ((await client.batches.retrieve(created.id)).request_counts!.completed < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal((await admin('DELETE', `/v1/admin/keys/${keyId}`)).status, 200);
    // The revoked key can no longer read the batch; another key of the account can.
    await assert.rejects(client.batches.retrieve(created.id), { status: 401 });
    const other = await admin('POST', `/v1/admin/accounts/${accountId}/keys`, { name: 'reader' });
    const reader = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: other.body.key, maxRetries: 0 });
    const batch = await waitFor(reader, created.id, ['completed'], 60_000);
    const output = await readLines(reader, batch.output_file_id);
    const errors = await readLines(reader, batch.error_file_id);
    assert.equal(output.length + errors.length, 30);
    assert.ok(output.length >= 1 && errors.length >= 1, `${output.length} ran, ${errors.length} refused`);
    for (const line of errors) assert.deepEqual([line.response.status_code, line.response.body.error.code], [401, 'invalid_api_key']);
  });

  test('embeddings and completions batches', async () => {
    const { client } = await newClient(5);
    const embeddings = [0, 1].map((index) => ({ custom_id: `e${index}`, method: 'POST', url: '/v1/embeddings', body: { model: STORIES, input: `hello ${index}` } }));
    const completions = [0, 1].map((index) => ({ custom_id: `c${index}`, method: 'POST', url: '/v1/completions', body: { model: STORIES, prompt: 'Once', max_tokens: 3 } }));
    const one = await client.batches.create({ input_file_id: await upload(client, jsonl(embeddings)), endpoint: '/v1/embeddings', completion_window: '24h' });
    const two = await client.batches.create({ input_file_id: await upload(client, jsonl(completions)), endpoint: '/v1/completions', completion_window: '24h' });
    const embedded = await readLines(client, (await waitFor(client, one.id, ['completed'])).output_file_id);
    assert.equal(embedded.length, 2);
    assert.equal(embedded[0].response.body.object, 'list');
    assert.ok(Array.isArray(embedded[0].response.body.data[0].embedding));
    const completed = await readLines(client, (await waitFor(client, two.id, ['completed'])).output_file_id);
    assert.equal(completed.length, 2);
    assert.equal(completed[0].response.body.object, 'text_completion');
  });
});

describe('batch cancel and expiry (accounts disabled)', () => {
  let server: TestServer;
  // Slow lines (ignore_eos) on one sequence, so that a batch is still running when it is cancelled or expires.
  const slowLine = (customId: string) => chatLine(customId, { max_tokens: 300, ignore_eos: true });

  before(async () => {
    server = await startTestServer({
      batches: { poll_interval_ms: 100, window_seconds: 3, concurrency: 1 },
      models: [{ id: STORIES, path: path.join(modelsDir, 'stories260K.gguf'), sequences: 2 }],
    });
  });
  after(() => server.close());

  test('cancel stops new lines at once and finishes within seconds', async () => {
    const client = server.client;
    const lines = Array.from({ length: 40 }, (_, index) => slowLine(`s${index}`));
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    const until = Date.now() + 10_000;
    while ((await client.batches.retrieve(created.id)).request_counts!.completed < 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    const cancelling = await client.batches.cancel(created.id);
    assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), cancelling.status);
    const batch = await waitFor(client, created.id, ['cancelled'], 5_000);
    assert.ok(Date.now() - started < 3_000, `cancelled after ${Date.now() - started} ms`);
    assert.ok(batch.cancelled_at && batch.cancelling_at);
    const output = await readLines(client, batch.output_file_id);
    const errors = await readLines(client, batch.error_file_id);
    assert.ok(output.length >= 1 && output.length < 40, `${output.length} lines ran`);
    assert.equal(output.length + errors.length, 40, 'every line is answered once');
    for (const line of errors) assert.equal(line.error.code, 'batch_cancelled');
    assert.deepEqual(new Set([...output, ...errors].map((line) => line.custom_id)).size, 40);
    await assert.rejects(client.batches.cancel('batch_nope'), { status: 404 });
  });

  test('a batch unfinished at the end of its window expires: completed lines are delivered, the rest reported expired', async () => {
    const client = server.client;
    const lines = Array.from({ length: 200 }, (_, index) => slowLine(`x${index}`));
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(created.expires_at! - created.created_at, 3);
    const batch = await waitFor(client, created.id, ['expired'], 10_000);
    assert.ok(batch.expired_at);
    const output = await readLines(client, batch.output_file_id);
    const errors = await readLines(client, batch.error_file_id);
    assert.ok(output.length >= 1 && output.length < 200, `${output.length} lines ran`);
    assert.equal(output.length + errors.length, 200);
    for (const line of errors) assert.equal(line.error.code, 'batch_expired');
    for (const line of output) assert.equal(line.response.status_code, 200);
  });
});

describe('batch work gives way to interactive requests', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      batches: { poll_interval_ms: 100 },
      models: [{ id: STORIES, path: path.join(modelsDir, 'stories260K.gguf'), sequences: 1 }],
    });
  });
  after(() => server.close());

  test('an interactive request is not queued behind a running batch line; the preempted line still runs once', async () => {
    const client = server.client;
    // Each line takes about a second on its own on the one sequence.
    const lines = Array.from({ length: 4 }, (_, index) => chatLine(`long-${index}`, { max_tokens: 1000, ignore_eos: true }));
    const created = await client.batches.create({ input_file_id: await upload(client, jsonl(lines)), endpoint: '/v1/chat/completions', completion_window: '24h' });
    // Wait until a line is generating, then ask interactively.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = performance.now();
    const stream = await client.chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true });
    let ttft: number | null = null;
    for await (const chunk of stream) if (ttft === null && chunk.choices[0]?.delta?.content) ttft = performance.now() - started;
    assert.ok(ttft !== null && ttft < 500, `interactive TTFT ${ttft} ms while a batch line held the only sequence`);
    const batch = await waitFor(client, created.id, ['completed'], 60_000);
    const output = await readLines(client, batch.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id), lines.map((line) => line.custom_id));
    for (const line of output) assert.equal(line.response.body.usage.completion_tokens, 1000);
  });
});

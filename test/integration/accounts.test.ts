import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-test-key-0123456789abcdef';

/** Usage is settled right after each response is sent: poll until `count` records are visible. */
async function usageRecords(url: string, path: string, key: string, count: number) {
  let response = await rawRequest(url, 'GET', path, undefined, { authorization: `Bearer ${key}` });
  for (let attempt = 0; attempt < 50 && response.body.data.length < count; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    response = await rawRequest(url, 'GET', path, undefined, { authorization: `Bearer ${key}` });
  }
  return response;
}

describe('accounts, keys, billing and limits (SQLite, memory limiter)', () => {
  let server: TestServer;
  const admin = (method: string, path: string, body?: unknown) =>
    rawRequest(server.url, method, path, body, { authorization: `Bearer ${ADMIN_KEY}` });
  const client = (key: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });

  async function newAccount(credits: number, keyOptions: Record<string, unknown> = {}) {
    const account = await admin('POST', '/v1/admin/accounts', { name: `acct-${Math.random()}`, credits_usd: credits });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k', ...keyOptions });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    return { account: account.body, key: key.body };
  }

  before(async () => {
    server = await startTestServer({ auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: true } });
  });
  after(() => server.close());

  test('the first start creates a default account and a demo key that works', async () => {
    assert.ok(server.server.secrets.demoKey?.startsWith('tm-'));
    assert.equal(server.server.secrets.adminKey, null, 'a configured admin key is not generated');
    const completion = await client(server.server.secrets.demoKey!).chat.completions.create({
      model: STORIES,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 4,
    });
    assert.equal(completion.choices.length, 1);
  });

  test('admin API: accounts, credits and keys', async () => {
    const created = await admin('POST', '/v1/admin/accounts', { name: 'acme', credits_usd: 12.5 });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'acme');
    assert.equal(created.body.balance_micros, 12_500_000);
    assert.equal(created.body.balance_usd, 12.5);
    assert.equal(created.body.status, 'active');
    assert.equal(typeof created.body.created_at, 'number');
    const id = created.body.id;
    assert.equal((await admin('GET', `/v1/admin/accounts/${id}`)).body.name, 'acme');
    const list = await admin('GET', '/v1/admin/accounts');
    assert.ok(list.body.data.some((account: { id: string }) => account.id === id));
    const credited = await admin('POST', `/v1/admin/accounts/${id}/credits`, { amount_usd: -2.5, note: 'refund' });
    assert.equal(credited.body.balance_micros, 10_000_000);
    const overdraw = await admin('POST', `/v1/admin/accounts/${id}/credits`, { amount_usd: -100 });
    assert.equal(overdraw.status, 400);
    const key = await admin('POST', `/v1/admin/accounts/${id}/keys`, { name: 'ci', models: [STORIES], rpm: 100, spend_limit_usd: 1 });
    assert.equal(key.status, 201);
    assert.match(key.body.key, /^tm-[A-Za-z0-9_-]{43}$/);
    assert.equal(key.body.spend_limit_micros, 1_000_000);
    const keys = await admin('GET', `/v1/admin/accounts/${id}/keys`);
    assert.equal(keys.body.data.length, 1);
    assert.equal(keys.body.data[0].key, undefined, 'the secret is shown only at creation');
    assert.ok(key.body.key.startsWith(keys.body.data[0].prefix));
    assert.equal((await admin('GET', '/v1/admin/accounts/acct_nope')).status, 404);
    assert.equal((await admin('DELETE', '/v1/admin/keys/key_nope')).status, 404);
    assert.equal((await admin('POST', '/v1/admin/accounts', { credits_usd: 1 })).status, 400);
  });

  test('keys: Bearer and x-api-key; missing, unknown, revoked and expired keys get 401 invalid_api_key', async () => {
    const { key } = await newAccount(1);
    const body = { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    assert.equal((await rawRequest(server.url, 'POST', '/v1/chat/completions', body, { authorization: `Bearer ${key.key}` })).status, 200);
    assert.equal((await rawRequest(server.url, 'POST', '/v1/chat/completions', body, { 'x-api-key': key.key })).status, 200);
    const badHeaders: Array<Record<string, string>> = [{}, { authorization: 'Bearer tm-unknown' }, { authorization: 'Basic abc' }];
    for (const headers of badHeaders) {
      const response = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
      assert.equal(response.status, 401);
      assert.equal(response.body.error.code, 'invalid_api_key');
      assert.equal(response.body.error.type, 'authentication_error');
    }
    assert.equal((await admin('DELETE', `/v1/admin/keys/${key.id}`)).status, 200);
    const revoked = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, { authorization: `Bearer ${key.key}` });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.body.error.code, 'invalid_api_key');
    const expiring = await newAccount(1, { expires_at: Math.floor(Date.now() / 1000) + 1 });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, { authorization: `Bearer ${expiring.key.key}` });
    assert.equal(expired.status, 401);
  });

  test('model allow-lists: other models are invisible and answer 404 model_not_found', async () => {
    const { key } = await newAccount(1, { models: [STORIES] });
    const models = await client(key.key).models.list();
    assert.deepEqual(models.data.map((model) => model.id), [STORIES]);
    await assert.rejects(
      client(key.key).chat.completions.create({ model: TINY_RANDOM, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
      (error: unknown) => error instanceof OpenAI.NotFoundError && (error.error as { code?: string }).code === 'model_not_found',
    );
  });

  test('an inference key cannot reach the admin API, the admin key cannot run inference', async () => {
    const { key } = await newAccount(1);
    const response = await rawRequest(server.url, 'GET', '/v1/admin/accounts', undefined, { authorization: `Bearer ${key.key}` });
    assert.equal(response.status, 403);
    await assert.rejects(
      client(ADMIN_KEY).chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
      (error: unknown) => error instanceof OpenAI.PermissionDeniedError,
    );
  });

  test('every request writes one usage record with its request id, priced exactly, debited from the balance', async () => {
    const { account, key } = await newAccount(1);
    const { data, response } = await client(key.key)
      .chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 12 })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    const records = await usageRecords(server.url, '/v1/usage/requests', key.key, 1);
    assert.equal(records.status, 200);
    assert.equal(records.body.data.length, 1);
    const record = records.body.data[0];
    assert.equal(record.id, requestId);
    assert.equal(record.account_id, account.id);
    assert.equal(record.key_id, key.id);
    assert.equal(record.model, STORIES);
    assert.equal(record.endpoint, '/v1/chat/completions');
    assert.equal(record.status, 'completed');
    assert.equal(record.prompt_tokens, data.usage!.prompt_tokens);
    assert.equal(record.completion_tokens, data.usage!.completion_tokens);
    assert.equal(record.cached_tokens, data.usage!.prompt_tokens_details!.cached_tokens);
    // Demo prices of stories-260k: 0.10 input, 0.025 cached, 0.40 output USD per 1M tokens.
    const exact = (record.prompt_tokens - record.cached_tokens) * 100_000 + record.cached_tokens * 25_000 + record.completion_tokens * 400_000;
    assert.equal(record.cost_micros, Math.floor((exact + 500_000) / 1_000_000));
    assert.ok(record.latency_ms >= 0 && record.ttft_ms !== null);
    const after = await admin('GET', `/v1/admin/accounts/${account.id}`);
    assert.equal(after.body.balance_micros, 1_000_000 - record.cost_micros);
    const summary = await rawRequest(server.url, 'GET', '/v1/usage?group_by=model', undefined, { authorization: `Bearer ${key.key}` });
    assert.deepEqual(summary.body.data.map((row: { group: string; requests: number }) => [row.group, row.requests]), [[STORIES, 1]]);
  });

  test('a request refused before generation writes no record; a cut-off stream is billed for what was generated', async () => {
    const { key } = await newAccount(1);
    const headers = { authorization: `Bearer ${key.key}` };
    const tooLong = await rawRequest(server.url, 'POST', '/v1/completions', { model: STORIES, prompt: 'a '.repeat(3000), max_tokens: 5 }, headers);
    assert.equal(tooLong.status, 400);
    const controller = new AbortController();
    const stream = await client(key.key).completions.create(
      { model: TINY_RANDOM, prompt: 'Once', max_tokens: 3000, ignore_eos: true, stream: true } as never,
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of stream as unknown as AsyncIterable<unknown>) {
        if (++chunks === 5) controller.abort();
      }
    } catch {
      // aborted
    }
    const records = await usageRecords(server.url, '/v1/usage/requests', key.key, 1);
    assert.equal(records!.body.data.length, 1, 'only the streamed request is recorded');
    const record = records!.body.data[0];
    assert.equal(record.status, 'cancelled');
    assert.ok(record.completion_tokens >= 5 && record.completion_tokens < 3000, `completion tokens ${record.completion_tokens}`);
    assert.ok(record.cost_micros > 0);
  });

  test('no overspend: 50 concurrent requests on an account funded for about 10', async () => {
    // Worst case of one request: prompt (~30 tokens) at 0.10 + 100 output at 0.40 per 1M tokens ~ 43 micro-USD.
    const { account, key } = await newAccount(0.00045);
    const openai = client(key.key);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () =>
        openai.chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 100 }),
      ),
    );
    const succeeded = results.filter((result) => result.status === 'fulfilled').length;
    const refused = results.filter(
      (result) => result.status === 'rejected' && (result.reason as { status?: number }).status === 402,
    ).length;
    assert.equal(succeeded + refused, 50, 'every request either ran or got 402');
    assert.ok(succeeded >= 5 && succeeded <= 20, `succeeded ${succeeded}`);
    const usage = await usageRecords(server.url, `/v1/usage/requests?account_id=${account.id}&limit=1000`, ADMIN_KEY, succeeded);
    const balance = (await admin('GET', `/v1/admin/accounts/${account.id}`)).body.balance_micros;
    const spent = usage.body.data.reduce((sum: number, record: { cost_micros: number }) => sum + record.cost_micros, 0);
    assert.equal(usage.body.data.length, succeeded);
    assert.ok(balance >= 0);
    assert.equal(balance, 450 - spent);
    const refusal = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refusal.reason as { error?: { code?: string } }).error?.code, 'insufficient_quota');
  });

  test('a key without limits of its own gets the default key limits, and their headers', async () => {
    const { key } = await newAccount(1);
    const body = { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    const response = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, { authorization: `Bearer ${key.key}` });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '10000');
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '9999');
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), '10000000');
    assert.ok(Number(response.headers.get('x-ratelimit-remaining-tokens')) < 10_000_000);
    assert.ok(response.headers.get('x-ratelimit-reset-requests'));
    assert.ok(response.headers.get('x-ratelimit-reset-tokens'));
  });

  test('rate limits: headers on every response, 429 rate_limit_exceeded with retry-after beyond rpm', async () => {
    const { key } = await newAccount(1, { rpm: 3, tpm: 100_000 });
    const body = { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    const headers = { authorization: `Bearer ${key.key}` };
    const first = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '3');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '2');
    assert.ok(first.headers.get('x-ratelimit-reset-requests'));
    assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '100000');
    assert.ok(Number(first.headers.get('x-ratelimit-remaining-tokens')) < 100_000);
    assert.ok(first.headers.get('x-ratelimit-reset-tokens'));
    await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
    await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
    const limited = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'rate_limit_exceeded');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  test('max_concurrency 1: requests sent one after another are all served (the slot is free when the answer is)', async () => {
    const { key } = await newAccount(1, { max_concurrency: 1 });
    const body = { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    const headers = { authorization: `Bearer ${key.key}` };
    for (let index = 0; index < 8; index++) {
      const response = await rawRequest(server.url, 'POST', '/v1/chat/completions', body, headers);
      assert.equal(response.status, 200, `request ${index}: ${JSON.stringify(response.body)}`);
    }
  });

  test('isolation: a key sees only its own account usage', async () => {
    const first = await newAccount(1);
    const second = await newAccount(1);
    await client(first.key.key).chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 });
    const own = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { authorization: `Bearer ${second.key.key}` });
    assert.equal(own.body.data.length, 0);
    const other = await rawRequest(server.url, 'GET', `/v1/usage/requests?account_id=${first.account.id}`, undefined, {
      authorization: `Bearer ${second.key.key}`,
    });
    assert.equal(other.status, 403);
    const byAdmin = await usageRecords(server.url, `/v1/usage/requests?account_id=${first.account.id}`, ADMIN_KEY, 1);
    assert.equal(byAdmin.body.data.length, 1);
  });

  test('prompt-cache isolation: a prefix computed for one account is reused for it, never for another', async () => {
    const first = await newAccount(1);
    const second = await newAccount(1);
    const messages = [
      { role: 'system' as const, content: `Shared system prompt ${Math.random()}: ${'Once upon a time there was a cat. '.repeat(12)}` },
      { role: 'user' as const, content: 'Tell me a story.' },
    ];
    const ask = (key: string) =>
      client(key).chat.completions.create({ model: STORIES, messages, max_tokens: 4, temperature: 0 });
    const cold = await ask(first.key.key);
    const warm = await ask(first.key.key);
    assert.ok(warm.usage!.prompt_tokens_details!.cached_tokens! > cold.usage!.prompt_tokens / 2, 'the same account hits its cache');
    const other = await ask(second.key.key);
    assert.equal(other.usage!.prompt_tokens_details!.cached_tokens, 0, 'another account gets no hit');
    assert.equal(other.choices[0].message.content, warm.choices[0].message.content, 'greedy output is identical with and without a hit');
  });

  test('account limits are shared by all keys of the account and can be changed', async () => {
    const created = await admin('POST', '/v1/admin/accounts', { name: 'team', credits_usd: 1, rpm: 2 });
    assert.equal(created.status, 201);
    assert.equal(created.body.rpm, 2);
    const keys = await Promise.all(
      ['a', 'b'].map(async (name) => (await admin('POST', `/v1/admin/accounts/${created.body.id}/keys`, { name })).body.key as string),
    );
    const body = { model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    const send = (key: string) => rawRequest(server.url, 'POST', '/v1/chat/completions', body, { authorization: `Bearer ${key}` });
    assert.equal((await send(keys[0])).status, 200);
    const second = await send(keys[1]);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-ratelimit-limit-requests'), '2');
    const third = await send(keys[0]);
    assert.equal(third.status, 429, 'the account-wide rpm counts both keys');
    assert.equal(third.body.error.code, 'rate_limit_exceeded');
    const patched = await admin('PATCH', `/v1/admin/accounts/${created.body.id}`, { rpm: null });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.rpm, null);
    assert.equal((await send(keys[1])).status, 200, 'an unlimited account admits again');
    assert.equal((await admin('PATCH', '/v1/admin/accounts/acct_missing', { rpm: 1 })).status, 404);
  });
});

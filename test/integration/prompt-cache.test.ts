import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { modelsDir, startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-prompt-cache-0123456789abcdef';

/** A fresh shared prefix per test, so no earlier request warmed it. */
function messages() {
  return [
    { role: 'system' as const, content: `System ${Math.random()}: ${'Once upon a time there was a cat. '.repeat(12)}` },
    { role: 'user' as const, content: 'Tell me a story.' },
  ];
}

/** Whole micro-USD per token (10, 4 and 20 USD per 1M), so that costs compare exactly. */
const PRICES = { input: 10, cached_input: 4, output: 20 };

async function serverWithScope(scope: 'account' | 'global'): Promise<TestServer> {
  return startTestServer({
    auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
    models: [{ id: STORIES, path: `${modelsDir}/stories260K.gguf`, context_size: 2048, prompt_cache: { scope }, prices: PRICES }],
  });
}

async function newKey(server: TestServer): Promise<OpenAI> {
  const headers = { authorization: `Bearer ${ADMIN_KEY}` };
  const account = await rawRequest(server.url, 'POST', '/v1/admin/accounts', { name: 'cache', credits_usd: 1 }, headers);
  const key = await rawRequest(server.url, 'POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' }, headers);
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key.body.key, maxRetries: 0 });
}

/** The usage record of a request (settled right after the response: polled). */
async function usageRecord(server: TestServer, client: OpenAI, requestId: string): Promise<{ cost_micros: number; cached_tokens: number }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await rawRequest(server.url, 'GET', '/v1/usage/requests?limit=100', undefined, { authorization: `Bearer ${client.apiKey}` });
    const record = (response.body.data as Array<{ id: string; cost_micros: number; cached_tokens: number }>).find((entry) => entry.id === requestId);
    if (record) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no usage record for ${requestId}`);
}

function ask(client: OpenAI, conversation: ReturnType<typeof messages>, extra: Record<string, unknown> = {}) {
  return client.chat.completions.create({ model: STORIES, messages: conversation, max_tokens: 4, temperature: 0, ...extra } as never) as Promise<OpenAI.ChatCompletion>;
}

const cached = (completion: OpenAI.ChatCompletion) => completion.usage!.prompt_tokens_details!.cached_tokens!;

describe('prompt cache, default account scope', () => {
  let server: TestServer;
  before(async () => (server = await serverWithScope('account')));
  after(() => server.close());

  test('cache_salt narrows reuse: another salt misses, the same salt hits', async () => {
    const client = await newKey(server);
    const conversation = messages();
    const cold = await ask(client, conversation, { cache_salt: 'a' });
    assert.equal(cached(await ask(client, conversation, { cache_salt: 'b' })), 0);
    assert.equal(cached(await ask(client, conversation)), 0, 'no salt is a scope of its own');
    assert.ok(cached(await ask(client, conversation, { cache_salt: 'a' })) > cold.usage!.prompt_tokens / 2);
  });

  test('a hit costs less than the cold request by exactly cached tokens x (input - cached_input)', async () => {
    const client = await newKey(server);
    const conversation = messages();
    const cold = await client.chat.completions.create({ model: STORIES, messages: conversation, max_tokens: 4, temperature: 0 }).withResponse();
    const hit = await client.chat.completions.create({ model: STORIES, messages: conversation, max_tokens: 4, temperature: 0 }).withResponse();
    assert.equal(cached(cold.data), 0);
    const hitTokens = cached(hit.data);
    assert.ok(hitTokens > 0);
    assert.equal(hit.data.choices[0].message.content, cold.data.choices[0].message.content);
    assert.equal(hit.data.usage!.completion_tokens, cold.data.usage!.completion_tokens);
    const coldRecord = await usageRecord(server, client, cold.response.headers.get('x-request-id')!);
    const hitRecord = await usageRecord(server, client, hit.response.headers.get('x-request-id')!);
    assert.equal(hitRecord.cached_tokens, hitTokens);
    assert.equal(coldRecord.cost_micros - hitRecord.cost_micros, hitTokens * (PRICES.input - PRICES.cached_input));
    const expectedCold = cold.data.usage!.prompt_tokens * PRICES.input + cold.data.usage!.completion_tokens * PRICES.output;
    assert.equal(coldRecord.cost_micros, expectedCold);
  });

  test('a computed prefix is copied to other sequences: concurrent requests all hit and answer as cold ones do', async () => {
    const client = await newKey(server);
    const conversation = messages();
    const questions = Array.from({ length: 6 }, (_, index) => `Question ${index}: what did the cat do?`);
    const withQuestion = (question: string) => [conversation[0], { role: 'user' as const, content: question }];
    const cold = await Promise.all(questions.map((question, index) => ask(client, withQuestion(question), { cache_salt: `cold-${index}` })));
    await ask(client, conversation);
    const warm = await Promise.all(questions.map((question) => ask(client, withQuestion(question))));
    for (let index = 0; index < questions.length; index++) {
      assert.equal(warm[index].choices[0].message.content, cold[index].choices[0].message.content, `question ${index}`);
      assert.ok(cached(warm[index]) >= 40, `question ${index} reused ${cached(warm[index])} of ${warm[index].usage!.prompt_tokens}`);
    }
  });

  test('concurrent requests with one prefix are all correct; later ones hit', async () => {
    const client = await newKey(server);
    const conversation = messages();
    const reference = (await ask(client, conversation)).choices[0].message.content;
    const results = await Promise.all(Array.from({ length: 8 }, () => ask(client, conversation)));
    for (const result of results) assert.equal(result.choices[0].message.content, reference);
    assert.ok(results.some((result) => cached(result) > 0));
  });

  test('eviction under pressure: more distinct prefixes than sequences keep serving correctly', async () => {
    const client = await newKey(server);
    const conversations = Array.from({ length: 12 }, () => messages());
    const first = await Promise.all(conversations.map((conversation) => ask(client, conversation)));
    const second = await Promise.all(conversations.map((conversation) => ask(client, conversation)));
    for (let index = 0; index < conversations.length; index++) {
      assert.equal(second[index].choices[0].message.content, first[index].choices[0].message.content);
    }
  });
});

describe('GET /metrics', () => {
  let server: TestServer;
  before(async () => (server = await serverWithScope('account')));
  after(() => server.close());

  test('Prometheus metrics with vLLM names: requests, tokens, cache hits, latencies, queue', async () => {
    const client = await newKey(server);
    const conversation = messages();
    await ask(client, conversation);
    const hit = await ask(client, conversation);
    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    const value = (name: string) => {
      const match = new RegExp(`^${name}\\{[^}]*model="${STORIES}"[^}]*\\} (\\S+)$`, 'm').exec(text);
      assert.ok(match, `${name} is missing`);
      return Number(match[1]);
    };
    assert.equal(value('tokenmill_prefix_cache_hits_total'), cached(hit));
    assert.ok(value('tokenmill_prefix_cache_queries_total') >= 2 * hit.usage!.prompt_tokens - 1);
    assert.equal(value('tokenmill_generation_tokens_total'), 8);
    assert.equal(value('tokenmill_request_success_total'), 2);
    assert.equal(value('tokenmill_time_to_first_token_seconds_count'), 2);
    assert.equal(value('tokenmill_e2e_request_latency_seconds_count'), 2);
    assert.ok(value('tokenmill_inter_token_latency_seconds_count') >= 2);
    assert.equal(value('tokenmill_num_requests_running'), 0);
    assert.equal(value('tokenmill_num_requests_waiting'), 0);
  });
});

describe('prompt cache, global scope (operator opt-in)', () => {
  let server: TestServer;
  before(async () => (server = await serverWithScope('global')));
  after(() => server.close());

  test('a prefix computed for one account is reused for another', async () => {
    const first = await newKey(server);
    const second = await newKey(server);
    const conversation = messages();
    const cold = await ask(first, conversation);
    const hit = await ask(second, conversation);
    assert.ok(cached(hit) > cold.usage!.prompt_tokens / 2);
    assert.equal(hit.choices[0].message.content, cold.choices[0].message.content);
  });
});

describe('prompt cache on disk (prompt_cache.disk_entries)', () => {
  const model = (entries: number) => [
    { id: STORIES, path: `${modelsDir}/stories260K.gguf`, context_size: 2048, sequences: 2, prompt_cache: { disk_entries: entries, disk_min_tokens: 32 } },
  ];

  async function savedEntries(dataDir: string): Promise<number> {
    const root = path.join(dataDir, 'prompt-cache');
    const folders = await readdir(root).catch(() => [] as string[]);
    let count = 0;
    for (const folder of folders) count += (await readdir(path.join(root, folder))).filter((name) => name.endsWith('.json')).length;
    return count;
  }

  async function waitFor(check: () => Promise<boolean>): Promise<void> {
    for (let attempt = 0; attempt < 100 && !(await check()); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  test('a hot prefix survives a restart and eviction from every sequence; output is unchanged', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tokenmill-disk-cache-'));
    const conversation = messages();
    const first = await startTestServer({ storage: { data_dir: dataDir }, models: model(4) });
    let cold: OpenAI.ChatCompletion;
    try {
      cold = await ask(first.client, conversation);
      assert.equal(cached(cold), 0);
      assert.equal(await savedEntries(dataDir), 0, 'a prefix used once is not saved');
      assert.ok(cached(await ask(first.client, conversation)) > 0);
      await waitFor(async () => (await savedEntries(dataDir)) > 0);
      assert.equal(await savedEntries(dataDir), 1, 'the reused prefix is saved once');
    } finally {
      await first.close();
    }
    const second = await startTestServer({ storage: { data_dir: dataDir }, models: model(4) });
    try {
      const restored = await ask(second.client, conversation);
      assert.ok(cached(restored) >= 32, `after a restart ${cached(restored)} tokens reused`);
      assert.equal(restored.choices[0].message.content, cold.choices[0].message.content);
      // Push the prefix out of both sequences, then ask again: it comes back from disk.
      await Promise.all([ask(second.client, messages()), ask(second.client, messages())]);
      const reloaded = await ask(second.client, conversation);
      assert.ok(cached(reloaded) >= 32, `after eviction ${cached(reloaded)} tokens reused`);
      assert.equal(reloaded.choices[0].message.content, cold.choices[0].message.content);
    } finally {
      await second.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('the disk keeps at most disk_entries prefixes; other scopes never load them', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tokenmill-disk-cache-'));
    const server = await startTestServer({ storage: { data_dir: dataDir }, models: model(2) });
    try {
      for (let index = 0; index < 3; index++) {
        const conversation = messages();
        await ask(server.client, conversation);
        await ask(server.client, conversation);
        await waitFor(async () => (await savedEntries(dataDir)) >= Math.min(index + 1, 2));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await savedEntries(dataDir), 2);
      const conversation = messages();
      await ask(server.client, conversation);
      await ask(server.client, conversation);
      await Promise.all([ask(server.client, messages()), ask(server.client, messages())]);
      assert.equal(cached(await ask(server.client, conversation, { cache_salt: 'other' })), 0);
    } finally {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

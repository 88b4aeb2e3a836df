import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ANTHROPIC_FAULT_USAGE, AnthropicFaultUpstream } from '../fixtures/anthropic-fault-upstream.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-anthropic-faults-012345678';
const UPSTREAM_KEY = 'sk-ant-fault-secret-0123456789';
const prices = { input: 1, cached_input: 0.5, output: 2 };
const routing = { retries: 1, backoff_ms: 10, max_retry_after_ms: 3_000, breaker_failures: 5, breaker_cooldown_ms: 60_000 };

/**
 * The router against a fault-injecting Anthropic upstream (test/fixtures/anthropic-fault-upstream.ts), through a
 * gateway with accounts on: 529 and 429 retried (honouring retry-after), no retry once a stream began (a cut stream
 * and a mid-stream `event: error` end the client's stream with a clean error event), refusals with the key redacted.
 */
describe('kind: anthropic upstream faults', () => {
  const names = ['overloaded', 'limited', 'exhausted', 'cut', 'errored', 'early', 'refusing', 'hold'] as const;
  const up = {} as Record<(typeof names)[number], AnthropicFaultUpstream>;
  let gateway: TestServer;
  let anthropic: Anthropic;
  let openai: OpenAI;
  let key: string;

  const message = (model: string) => anthropic.messages.create({ model, max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
  /** A streamed request's raw SSE text. */
  const streamed = async (path: '/v1/messages' | '/v1/chat/completions', model: string) => {
    const response = await fetch(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(response.status, 200);
    return response.text();
  };

  before(async () => {
    for (const name of names) up[name] = await AnthropicFaultUpstream.start();
    const deployment = (upstream: AnthropicFaultUpstream) => ({ kind: 'anthropic', base_url: upstream.url, model: 'claude-test', api_key: UPSTREAM_KEY, timeout_ms: 5_000 });
    gateway = await startTestServer({
      auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
      models: names.map((name) => ({ id: name, prices, routing: name === 'cut' ? { ...routing, retries: 3 } : routing, deployments: [deployment(up[name])] })),
    });
    const admin = (path: string, body: unknown) => rawRequest(gateway.url, 'POST', path, body, { authorization: `Bearer ${ADMIN_KEY}` });
    const account = await admin('/v1/admin/accounts', { name: 'anthropic-faults', credits_usd: 10 });
    key = (await admin(`/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' })).body.key;
    anthropic = new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0 });
    openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });

  after(async () => {
    await gateway?.close();
    for (const name of names) await up[name]?.close();
  });

  test('a 529 overloaded is retried, then succeeds; the upstream gets its key, version, model and path', async () => {
    up.overloaded.plan = ['status-529'];
    const answer = await message('overloaded');
    assert.deepEqual(answer.content, [{ type: 'text', text: 'Hello world' }]);
    assert.equal(answer.stop_reason, 'end_turn');
    assert.equal(answer.usage.output_tokens, ANTHROPIC_FAULT_USAGE.output_tokens);
    assert.equal(answer.usage.cache_read_input_tokens, ANTHROPIC_FAULT_USAGE.cache_read_input_tokens);
    assert.equal(up.overloaded.count, 2);
    const seen = up.overloaded.seen[1];
    assert.equal(seen.path, '/v1/messages');
    assert.equal(seen.headers['x-api-key'], UPSTREAM_KEY);
    assert.equal(seen.headers['anthropic-version'], '2023-06-01');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.body.model, 'claude-test');
    assert.equal(seen.body.stream, true);
    assert.equal(seen.body.max_tokens, 5);
    // OpenAI's view of the same usage: the prompt is input + cache reads + cache writes.
    const chat = await openai.chat.completions.create({ model: 'overloaded', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(chat.choices[0].message.content, 'Hello world');
    assert.deepEqual(chat.usage, { prompt_tokens: 15, completion_tokens: 2, total_tokens: 17, prompt_tokens_details: { cached_tokens: 4 } });
  });

  test("a 429's retry-after is honoured before the retry; exhausted retries are a 429 for the client", async () => {
    up.limited.retryAfter = '1';
    up.limited.plan = ['status-429'];
    const started = Date.now();
    const answer = await message('limited');
    assert.equal((answer.content[0] as Anthropic.TextBlock).text, 'Hello world');
    assert.ok(Date.now() - started >= 900, `waited ${Date.now() - started} ms`);
    assert.equal(up.limited.count, 2);

    // Tokenmill's `overloaded` is Anthropic's 529 overloaded_error for Anthropic clients, 429 for OpenAI ones.
    up.exhausted.plan = ['status-429', 'status-429', 'status-429', 'status-429'];
    await assert.rejects(message('exhausted'), (error: unknown) => {
      assert.ok(error instanceof Anthropic.APIError);
      assert.equal(error.status, 529);
      return true;
    });
    assert.equal(up.exhausted.count, 2);
    await assert.rejects(openai.chat.completions.create({ model: 'exhausted', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 429);
      assert.equal(error.headers?.get('retry-after'), '1');
      return true;
    });
    assert.equal(up.exhausted.count, 4);
  });

  test('a stream cut mid-way: the client gets a clean error event and no message_stop; it is not retried', async () => {
    up.cut.fallback = 'cut-stream';
    const text = await streamed('/v1/messages', 'cut');
    assert.match(text, /event: content_block_delta\ndata: .*"Hello"/);
    assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error"|event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error"/);
    assert.doesNotMatch(text, /message_stop/);
    assert.equal(up.cut.count, 1);
    const chat = await streamed('/v1/chat/completions', 'cut');
    assert.match(chat, /"error":\{/);
    assert.doesNotMatch(chat, /\[DONE\][\s\S]*\[DONE\]/);
    assert.equal(up.cut.count, 2);
    const sdkStream = anthropic.messages.stream({ model: 'cut', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
    await assert.rejects(sdkStream.finalMessage());
    assert.equal(up.cut.count, 3);
  });

  test('an event: error mid-stream ends the stream with an error event, not retried; before any content it is retried', async () => {
    up.errored.fallback = 'error-event';
    const text = await streamed('/v1/messages', 'errored');
    assert.match(text, /"Hello"/);
    assert.match(text, /event: error\n/);
    assert.doesNotMatch(text, /message_stop/);
    assert.doesNotMatch(text, new RegExp(UPSTREAM_KEY));
    assert.equal(up.errored.count, 1);

    up.early.plan = ['error-first'];
    const answer = await message('early');
    assert.equal((answer.content[0] as Anthropic.TextBlock).text, 'Hello world');
    assert.equal(up.early.count, 2, 'an overloaded_error before the first token is retried');
  });

  test("a 400 reaches the client with the upstream's message, the key redacted; not retried", async () => {
    up.refusing.errorMessage = `invalid x-api-key ${UPSTREAM_KEY}`;
    up.refusing.plan = ['status-400'];
    const response = await rawRequest(
      gateway.url,
      'POST',
      '/v1/messages',
      { model: 'refusing', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] },
      { authorization: `Bearer ${key}` },
    );
    assert.equal(response.status, 400);
    assert.equal(response.body.type, 'error');
    assert.match(response.body.error.message, /\[redacted\]/);
    assert.doesNotMatch(JSON.stringify(response.body), new RegExp(UPSTREAM_KEY));
    assert.equal(up.refusing.count, 1);
  });

  test("the client's abort closes the upstream request", async () => {
    up.hold.fallback = 'hold-stream';
    const closed = up.hold.nextEarlyClose();
    const controller = new AbortController();
    const stream = anthropic.messages.stream({ model: 'hold', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] }, { signal: controller.signal });
    stream.on('text', () => controller.abort());
    await stream.done().catch(() => {});
    await closed;
    assert.equal(up.hold.seen[0].closedEarly, true);
    assert.equal(up.hold.count, 1);
  });
});

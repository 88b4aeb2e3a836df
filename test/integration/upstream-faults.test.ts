import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { FaultUpstream } from '../fixtures/fault-upstream.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-upstream-faults-0123456789';
const UPSTREAM_KEY = 'sk-upstream-secret-0123456789';
const prices = { input: 1, cached_input: 0.5, output: 2 };

/** Fast routing settings for tests: short backoff, quick breaker. */
const routing = { retries: 1, backoff_ms: 10, max_retry_after_ms: 3_000, breaker_failures: 3, breaker_cooldown_ms: 60_000 };

function deployment(upstream: FaultUpstream, extra: Record<string, unknown> = {}) {
  return { kind: 'openai', base_url: upstream.url, model: 'upstream-model', api_key: UPSTREAM_KEY, timeout_ms: 5_000, ...extra };
}

/**
 * The router against fault-injecting upstreams (test/fixtures/fault-upstream.ts), through a gateway with accounts on:
 * retries, fallbacks, no retry once a stream began, the circuit breaker, timeouts, client aborts and balancing.
 */
describe('upstream faults', () => {
  const names = ['retry', 'slow429', 'fallbackA', 'fallbackB', 'cut', 'breakerA', 'breakerB', 'lonely', 'hang', 'hold', 'wide', 'narrow', 'busy', 'idle', 'refusing', 'keepalive'] as const;
  const up = {} as Record<(typeof names)[number], FaultUpstream>;
  let gateway: TestServer;
  let client: OpenAI;
  let key: string;

  const chat = (model: string, extra: Record<string, unknown> = {}) =>
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  /** The usage record of `model`'s latest request, once it is committed (settlements are group-committed). */
  const usageRecordOf = async (model: string) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const response = await rawRequest(gateway.url, 'GET', '/v1/usage/requests', undefined, { authorization: `Bearer ${key}` });
      const record = (response.body.data as Array<Record<string, any>>).find((candidate) => candidate.model === model);
      if (record) return record;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return undefined;
  };

  before(async () => {
    for (const name of names) up[name] = await FaultUpstream.start();
    gateway = await startTestServer({
      auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
      models: [
        { id: 'retry', prices, routing, deployments: [deployment(up.retry)] },
        { id: 'slow429', prices, routing, deployments: [deployment(up.slow429)] },
        { id: 'fallback', prices, routing, deployments: [deployment(up.fallbackA, { weight: 1000 }), deployment(up.fallbackB)] },
        { id: 'cut', prices, routing: { ...routing, retries: 3 }, deployments: [deployment(up.cut)] },
        {
          id: 'breaker',
          prices,
          routing: { ...routing, retries: 0, breaker_failures: 2, breaker_cooldown_ms: 400 },
          deployments: [deployment(up.breakerA, { weight: 1000 }), deployment(up.breakerB)],
        },
        { id: 'lonely', prices, routing: { ...routing, retries: 0, breaker_failures: 1 }, deployments: [deployment(up.lonely)] },
        { id: 'hang', prices, routing: { ...routing, retries: 0 }, deployments: [deployment(up.hang, { timeout_ms: 300 })] },
        { id: 'hold', prices, routing, deployments: [deployment(up.hold)] },
        { id: 'weighted', prices, routing, deployments: [deployment(up.wide, { weight: 3 }), deployment(up.narrow, { weight: 1 })] },
        { id: 'least', prices, routing, deployments: [deployment(up.busy), deployment(up.idle)] },
        { id: 'refusing', prices, routing, deployments: [deployment(up.refusing)] },
        { id: 'keepalive', prices, routing, deployments: [deployment(up.keepalive)] },
      ],
    });
    const admin = (path: string, body: unknown) => rawRequest(gateway.url, 'POST', path, body, { authorization: `Bearer ${ADMIN_KEY}` });
    const account = await admin('/v1/admin/accounts', { name: 'faults', credits_usd: 10 });
    key = (await admin(`/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' })).body.key;
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });

  after(async () => {
    await gateway.close();
    for (const name of names) await up[name].close();
  });

  test('a 500 is retried on the same deployment, then succeeds; the upstream gets its key and model', async () => {
    up.retry.plan = ['status-500'];
    const completion = await chat('retry');
    assert.equal(completion.choices[0].message.content, 'Hello world');
    assert.deepEqual(completion.usage, { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13, prompt_tokens_details: { cached_tokens: 3 } });
    assert.equal(up.retry.count, 2);
    assert.equal(up.retry.seen[1].authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(up.retry.seen[1].body.model, 'upstream-model');
    assert.deepEqual(up.retry.seen[1].body.stream_options, { include_usage: true });
  });

  test("a 429's retry-after is honoured before the retry", async () => {
    up.slow429.plan = ['status-429'];
    up.slow429.retryAfter = '1';
    const started = Date.now();
    await chat('slow429');
    assert.ok(Date.now() - started >= 950, `retried after ${Date.now() - started} ms`);
    assert.equal(up.slow429.count, 2);
  });

  test('retryable failures (500, then a connection reset) fall back to the next deployment', async () => {
    up.fallbackA.plan = ['status-500', 'reset'];
    const completion = await chat('fallback');
    assert.equal(completion.choices[0].message.content, 'Hello world');
    assert.equal(up.fallbackA.count, 2, 'one try and one retry on the first deployment');
    assert.equal(up.fallbackB.count, 1);
  });

  test('no retry once streaming began: the client gets an error event, and what was streamed is billed', async () => {
    up.cut.fallback = 'cut-stream';
    const stream = await client.chat.completions.create({ model: 'cut', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    }, /could not be reached|upstream/i);
    assert.equal(text, 'Hello wor');
    assert.equal(up.cut.count, 1, 'not retried after the first event');
    const record = await usageRecordOf('cut');
    assert.ok(record, 'a usage record');
    assert.equal(record.status, 'failed');
    assert.ok(record.completion_tokens > 0 && record.cost_micros > 0, JSON.stringify(record));
  });

  test('the circuit opens after N failures (no more requests reach it), then a probe closes it', async () => {
    up.breakerA.fallback = 'status-500';
    for (let index = 0; index < 2; index++) assert.equal((await chat('breaker')).choices[0].message.content, 'Hello world');
    assert.equal(up.breakerA.count, 2);
    assert.equal(up.breakerB.count, 2);
    for (let index = 0; index < 3; index++) await chat('breaker');
    assert.equal(up.breakerA.count, 2, 'the open deployment gets nothing');
    assert.equal(up.breakerB.count, 5);
    up.breakerA.fallback = 'ok';
    await new Promise((resolve) => setTimeout(resolve, 450));
    await chat('breaker');
    assert.equal(up.breakerA.count, 3, 'the half-open probe');
    await chat('breaker');
    await chat('breaker');
    assert.equal(up.breakerA.count, 5, 'closed again: the heavy deployment takes the traffic');
  });

  test('every circuit open: 503 no_healthy_deployment with retry-after', async () => {
    up.lonely.fallback = 'status-503';
    const first = await rawRequest(gateway.url, 'POST', '/v1/chat/completions', { model: 'lonely', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });
    assert.equal(first.status, 503);
    assert.equal(first.body.error.code, 'upstream_error');
    const second = await rawRequest(gateway.url, 'POST', '/v1/chat/completions', { model: 'lonely', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });
    assert.equal(second.status, 503);
    assert.equal(second.body.error.code, 'no_healthy_deployment');
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    assert.equal(up.lonely.count, 1);
  });

  test("an answer is complete at the upstream's [DONE]; the body's end is read in the background and the connection reused", { timeout: 10_000 }, async () => {
    // The upstream holds its bodies open after [DONE]: neither answer may wait for their end.
    up.keepalive.fallback = 'done-then-hold';
    assert.equal((await chat('keepalive')).choices[0].message.content, 'Hello world');
    const stream = await client.chat.completions.create({ model: 'keepalive', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello world');
    assert.equal(up.keepalive.connections, 2, 'a held body keeps its connection');
    // Once the bodies end, their connections go back to the pool and serve the next requests.
    up.keepalive.fallback = 'ok';
    up.keepalive.releaseHeld();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let index = 0; index < 3; index++) await chat('keepalive');
    assert.equal(up.keepalive.connections, 2);
  });

  test('an upstream that does not answer times out (504), and its request is closed', async () => {
    up.hang.fallback = 'hang';
    const closed = up.hang.nextEarlyClose();
    const started = Date.now();
    const response = await rawRequest(gateway.url, 'POST', '/v1/chat/completions', { model: 'hang', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });
    assert.equal(response.status, 504);
    assert.equal(response.body.error.code, 'upstream_timeout');
    assert.ok(Date.now() - started < 3_000);
    await closed;
  });

  test("the client's disconnect aborts the upstream request (mid-stream and before the answer)", async () => {
    up.hold.fallback = 'hold-stream';
    const closed = up.hold.nextEarlyClose();
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'hold', messages: [{ role: 'user', content: 'Hi' }], stream: true },
      { signal: controller.signal },
    );
    try {
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content) controller.abort();
    } catch {
      // The client's abort may end the iteration with an error or quietly.
    }
    await closed;
    up.hold.fallback = 'hang';
    const closedAgain = up.hold.nextEarlyClose();
    await assert.rejects(
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'hold', messages: [{ role: 'user', content: 'Hi' }] }),
        signal: AbortSignal.timeout(200),
      }),
    );
    await closedAgain;
  });

  test('load balancing: sequential requests by weight, concurrent ones to the least busy deployment', async () => {
    for (let index = 0; index < 8; index++) await chat('weighted');
    assert.deepEqual([up.wide.count, up.narrow.count], [6, 2]);
    up.busy.delayMs = 800;
    const slow = chat('least');
    for (let wait = 0; wait < 200 && up.busy.count + up.idle.count === 0; wait++) await new Promise((resolve) => setTimeout(resolve, 5));
    for (let index = 0; index < 3; index++) await chat('least');
    await slow;
    assert.deepEqual([up.busy.count, up.idle.count], [1, 3]);
  });

  test("an upstream's 400 reaches the client as invalid_request with its message, the key redacted; 401 is the server's problem", async () => {
    up.refusing.plan = ['status-400', 'status-401'];
    up.refusing.errorMessage = `Incorrect API key provided: ${UPSTREAM_KEY}`;
    const refused = await rawRequest(gateway.url, 'POST', '/v1/chat/completions', { model: 'refusing', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'upstream_invalid_request');
    assert.equal(refused.body.error.param, 'messages');
    assert.match(refused.body.error.message, /\[redacted\]/);
    assert.ok(!JSON.stringify(refused.body).includes(UPSTREAM_KEY));
    const unauthorized = await rawRequest(gateway.url, 'POST', '/v1/chat/completions', { model: 'refusing', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });
    assert.equal(unauthorized.status, 503);
    assert.equal(unauthorized.body.error.code, 'upstream_error');
    assert.ok(!JSON.stringify(unauthorized.body).includes(UPSTREAM_KEY));
    assert.equal(up.refusing.count, 2, 'neither is retried');
  });

  test('embeddings go to the upstream, normalized, with its token count', async () => {
    const response = await client.embeddings.create({ model: 'retry', input: ['a', 'b'] });
    // The client asks for base64 (float32): compare to float32 precision.
    for (const item of response.data) {
      assert.ok(Math.abs(item.embedding[0] - 0.6) < 1e-6 && Math.abs(item.embedding[1] - 0.8) < 1e-6, String(item.embedding));
    }
    assert.equal(response.usage.prompt_tokens, 7);
  });
});

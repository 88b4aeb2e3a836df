import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, TokenmillError } from '../../src/core/errors.js';
import type { DeploymentTarget } from '../../src/core/routing/deployment.js';
import { RoutingEngine, type AttemptOutcome } from '../../src/core/routing/routing-engine.js';
import type { EngineEvent, GenerateRequest } from '../../src/engine/engine.js';
import { UpstreamError } from '../../src/upstream/upstream-error.js';

type Step = 'ok' | 'cut' | UpstreamError | TokenmillError;

/** A deployment that plays a script: each call takes the next step (then `ok`). */
function scripted(name: string, steps: Step[], local = false): DeploymentTarget & { calls: number } {
  const target = {
    name,
    local,
    calls: 0,
    async *generate(): AsyncGenerator<EngineEvent[]> {
      target.calls++;
      const step = steps.shift() ?? 'ok';
      if (step instanceof Error) throw step;
      yield [{ type: 'text-delta', text: name, logprobs: null }];
      const usage = { promptTokens: 3, cachedTokens: 0, completionTokens: 1 };
      if (step === 'cut') {
        yield [{ type: 'end', finishReason: 'cancelled', usage, error: new UpstreamError('cut', { deployment: name }) }];
        return;
      }
      yield [{ type: 'end', finishReason: 'stop', usage }];
    },
    async embed() {
      target.calls++;
      const step = steps.shift() ?? 'ok';
      if (step instanceof Error) throw step;
      return { vectors: [[1]], promptTokens: 1 };
    },
    async countPromptTokens() {
      return 1;
    },
  };
  return target;
}

const routing = { retries: 2, backoff_ms: 100, max_retry_after_ms: 1000, breaker_failures: 2, breaker_cooldown_ms: 5000 };
const request = { model: 'm', prompt: { kind: 'text', text: 'hi' }, deadline: Infinity } as unknown as GenerateRequest;

function router(targets: Array<DeploymentTarget & { calls: number }>, options: { weights?: number[]; retries?: number; breakerFailures?: number } = {}) {
  let clock = 0;
  const sleeps: number[] = [];
  const attempts: Array<[string, AttemptOutcome]> = [];
  const engine = new RoutingEngine({
    local: null,
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    onAttempt: (_model, deployment, outcome) => attempts.push([deployment, outcome]),
    routes: [
      {
        model: 'm',
        contextSize: 100,
        tokenizer: null,
        routing: { ...routing, retries: options.retries ?? routing.retries, breaker_failures: options.breakerFailures ?? routing.breaker_failures },
        deployments: targets.map((target, index) => ({ target, weight: options.weights?.[index] ?? 10 - index })),
      },
    ],
  });
  return { engine, sleeps, attempts, advance: (ms: number) => (clock += ms) };
}

async function run(engine: RoutingEngine, signal = new AbortController().signal): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  for await (const batch of engine.generate(request, signal)) {
    assert.ok(batch.length > 0, 'a batch is never empty');
    events.push(...batch);
  }
  return events;
}

const serverError = () => new UpstreamError('500', { deployment: 'x', status: 500 });

test('retryable failures are retried with exponential backoff, then succeed', async () => {
  const a = scripted('a', [serverError(), serverError()]);
  const { engine, sleeps, attempts } = router([a], { breakerFailures: 5 });
  const events = await run(engine);
  assert.equal(events[0].type === 'text-delta' && events[0].text, 'a');
  assert.equal(a.calls, 3);
  assert.equal(sleeps.length, 2);
  assert.ok(sleeps[0] >= 50 && sleeps[0] <= 100 && sleeps[1] >= 100 && sleeps[1] <= 200, String(sleeps));
  assert.deepEqual(attempts.map(([, outcome]) => outcome), ['failure', 'failure', 'success']);
});

test("retry-after is honoured up to the cap; a longer one moves on to the next deployment", async () => {
  const a = scripted('a', [new UpstreamError('429', { deployment: 'a', status: 429, retryAfterMs: 700 }), new UpstreamError('429', { deployment: 'a', status: 429, retryAfterMs: 5000 })]);
  const b = scripted('b', []);
  const { engine, sleeps } = router([a, b]);
  const events = await run(engine);
  assert.deepEqual(sleeps, [700]);
  assert.equal(events[0].type === 'text-delta' && events[0].text, 'b');
  assert.deepEqual([a.calls, b.calls], [2, 1]);
});

test('not retryable: the error is mapped for the client and nothing else is tried', async () => {
  const a = scripted('a', [new UpstreamError('400', { deployment: 'a', status: 400, body: '{"error":{"message":"bad thing","param":"x"}}' })]);
  const b = scripted('b', []);
  const { engine } = router([a, b]);
  await assert.rejects(run(engine), (error: TokenmillError) => error.kind === 'invalid_request' && error.message === 'bad thing' && error.param === 'x');
  assert.deepEqual([a.calls, b.calls], [1, 0]);
});

test('no retry once the first event was yielded: the end event carries the mapped error', async () => {
  const a = scripted('a', ['cut']);
  const { engine } = router([a]);
  const events = await run(engine);
  const end = events.at(-1)!;
  assert.equal(end.type, 'end');
  assert.ok(end.type === 'end' && end.error instanceof TokenmillError && end.error.code === 'upstream_error');
  assert.equal(a.calls, 1);
});

test('the breaker opens after N failures; with every circuit open the error is unavailable with retry-after', async () => {
  const a = scripted('a', [serverError(), serverError(), serverError()]);
  const { engine, advance } = router([a], { retries: 0 });
  await assert.rejects(run(engine), (error: TokenmillError) => error.code === 'upstream_error');
  await assert.rejects(run(engine), (error: TokenmillError) => error.code === 'upstream_error');
  await assert.rejects(run(engine), (error: TokenmillError) => error.code === 'no_healthy_deployment' && error.kind === 'unavailable' && error.retryAfterSeconds === 5);
  assert.equal(a.calls, 2);
  advance(5000);
  await assert.rejects(run(engine), (error: TokenmillError) => error.code === 'upstream_error');
  assert.equal(a.calls, 3, 'the half-open probe failed');
  advance(5000);
  const events = await run(engine);
  assert.equal(events.at(-1)!.type === 'end' && events.at(-1)!.type, 'end');
  assert.equal(engine.deploymentsOf('m')[0].breaker.state(0), 'closed');
});

test("a local deployment's full queue fails over to the next deployment without a retry", async () => {
  const local = scripted('local', [new TokenmillError('overloaded', 'queue_full', 'full', { retryAfterSeconds: 1 })], true);
  const remote = scripted('remote', []);
  const { engine, sleeps } = router([local, remote]);
  const events = await run(engine);
  assert.equal(events[0].type === 'text-delta' && events[0].text, 'remote');
  assert.deepEqual(sleeps, []);
});

test('timeouts map to 504 upstream_timeout; the outstanding count returns to zero', async () => {
  const a = scripted('a', [new UpstreamError('slow', { deployment: 'a', timedOut: true })]);
  const { engine } = router([a], { retries: 0 });
  await assert.rejects(run(engine), (error: TokenmillError) => error.kind === 'timeout' && error.code === 'upstream_timeout');
  assert.equal(engine.deploymentsOf('m')[0].outstanding, 0);
});

test('an abort during the backoff ends the request', async () => {
  const a = scripted('a', [serverError()]);
  const controller = new AbortController();
  const engine = new RoutingEngine({
    local: null,
    sleep: async () => {
      controller.abort();
      throw new AbortedError();
    },
    routes: [{ model: 'm', contextSize: 100, tokenizer: null, routing, deployments: [{ target: a, weight: 1 }] }],
  });
  await assert.rejects(run(engine, controller.signal), AbortedError);
  assert.equal(a.calls, 1);
});

test('embeddings fail over like generation', async () => {
  const a = scripted('a', [serverError(), serverError(), serverError()]);
  const b = scripted('b', []);
  const { engine } = router([a, b]);
  assert.deepEqual(await engine.embed('m', ['x'], new AbortController().signal), { vectors: [[1]], promptTokens: 1 });
  assert.deepEqual([a.calls, b.calls], [2, 1], 'the breaker (2 failures) cut the retries short');
});

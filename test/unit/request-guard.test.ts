import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { RequestGuard } from '../../src/upstream/request-guard.js';

/** The guard's one timer serves two limits; `touch` only notes the time (decision 0020). */

test('without activity the idle limit fires: the guard says why and emits abort once', async () => {
  const caller = new AbortController();
  const guard = new RequestGuard(caller.signal, 50, 10_000);
  let aborts = 0;
  guard.on('abort', () => aborts++);
  await once(guard, 'abort');
  assert.equal(guard.firedBy, 'idle');
  assert.equal(guard.aborted, true);
  caller.abort();
  guard.dispose(true);
  await sleep(20);
  assert.equal(aborts, 1);
  assert.equal(guard.firedBy, 'idle', 'the first reason stays');
});

test('touches keep the idle limit away; the total limit still ends the request', async () => {
  const guard = new RequestGuard(new AbortController().signal, 60, 250);
  const started = performance.now();
  const toucher = setInterval(() => guard.touch(), 15);
  await once(guard, 'abort');
  clearInterval(toucher);
  assert.equal(guard.firedBy, 'total');
  assert.ok(performance.now() - started >= 240, 'not before the total limit');
});

test("the caller's abort cancels at once, also when it came before the guard", async () => {
  const caller = new AbortController();
  const guard = new RequestGuard(caller.signal, 10_000, 10_000);
  const aborted = once(guard, 'abort');
  caller.abort();
  await aborted;
  assert.equal(guard.firedBy, 'client');
  const early = new RequestGuard(caller.signal, 10_000, 10_000);
  assert.equal(early.firedBy, 'client');
  assert.equal(early.aborted, true);
});

test('dispose stops the limits; a handed-over request ignores the caller and its dispose, until released', async () => {
  const disposed = new RequestGuard(new AbortController().signal, 30, 60);
  disposed.dispose(false);
  await sleep(100);
  assert.equal(disposed.firedBy, null);
  assert.equal(disposed.aborted, false);

  const caller = new AbortController();
  const handed = new RequestGuard(caller.signal, 10_000, 10_000);
  const release = handed.handOver();
  caller.abort();
  handed.dispose(true);
  assert.equal(handed.aborted, false, 'neither the caller nor dispose reach a handed-over request');
  release(true);
  assert.equal(handed.aborted, true, 'an unfinished background read is cancelled by its release');
  assert.equal(handed.firedBy, null);
});

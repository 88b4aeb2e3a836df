import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError, TokenmillError } from '../../src/core/errors.js';
import { SlotScheduler } from '../../src/engine/llama/slot-scheduler.js';

const never = new AbortController().signal;
const far = () => Date.now() + 60_000;

test('free slots are handed out at once', async () => {
  const scheduler = new SlotScheduler(['a', 'b'], 4);
  assert.equal(await scheduler.acquire({ priority: 0, deadline: far(), signal: never }), 'a');
  assert.equal(await scheduler.acquire({ priority: 0, deadline: far(), signal: never }), 'b');
  assert.equal(scheduler.freeSlots, 0);
});

test('a full queue refuses with an overloaded error and retry-after', async () => {
  const scheduler = new SlotScheduler(['a'], 1);
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  const waiting = scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  await assert.rejects(scheduler.acquire({ priority: 0, deadline: far(), signal: never }), (error: unknown) => {
    assert.ok(error instanceof TokenmillError);
    assert.equal(error.kind, 'overloaded');
    assert.equal(error.retryAfterSeconds, 1);
    return true;
  });
  scheduler.release('a');
  assert.equal(await waiting, 'a');
});

test('waiters are served by priority, then arrival', async () => {
  const scheduler = new SlotScheduler(['a'], 10);
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  const order: string[] = [];
  const batch = scheduler.acquire({ priority: 10, deadline: far(), signal: never }).then(() => order.push('batch'));
  const first = scheduler.acquire({ priority: 0, deadline: far(), signal: never }).then(() => order.push('first'));
  const second = scheduler.acquire({ priority: 0, deadline: far(), signal: never }).then(() => order.push('second'));
  scheduler.release('a');
  await first;
  scheduler.release('a');
  await second;
  scheduler.release('a');
  await batch;
  assert.deepEqual(order, ['first', 'second', 'batch']);
});

test('an aborted waiter leaves the queue', async () => {
  const scheduler = new SlotScheduler(['a'], 10);
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  const controller = new AbortController();
  const waiting = scheduler.acquire({ priority: 0, deadline: far(), signal: controller.signal });
  assert.equal(scheduler.queueDepth, 1);
  controller.abort();
  await assert.rejects(waiting, AbortedError);
  assert.equal(scheduler.queueDepth, 0);
});

test('a waiter past its deadline times out', async () => {
  const scheduler = new SlotScheduler(['a'], 10);
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  await assert.rejects(scheduler.acquire({ priority: 0, deadline: Date.now() + 20, signal: never }), (error: unknown) => {
    assert.ok(error instanceof TokenmillError);
    assert.equal(error.kind, 'timeout');
    return true;
  });
});

test('the chooser picks among free slots (prefix affinity)', async () => {
  const scheduler = new SlotScheduler(['a', 'b', 'c'], 10);
  const slot = await scheduler.acquire({ priority: 0, deadline: far(), signal: never, choose: (free) => free[2] });
  assert.equal(slot, 'c');
  assert.equal(scheduler.freeSlots, 2);
});

test('close fails waiters and refuses new work', async () => {
  const scheduler = new SlotScheduler(['a'], 10);
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  const waiting = scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  scheduler.close();
  await assert.rejects(waiting, (error: unknown) => error instanceof TokenmillError && error.kind === 'unavailable');
  await assert.rejects(scheduler.acquire({ priority: 0, deadline: far(), signal: never }));
});

test('a waiting interactive request preempts one batch holder, the least urgent, once', async () => {
  const scheduler = new SlotScheduler(['a', 'b', 'c'], 10);
  const preempted: string[] = [];
  await scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  await scheduler.acquire({ priority: 10, deadline: far(), signal: never, preempt: () => preempted.push('b') });
  await scheduler.acquire({ priority: 5, deadline: far(), signal: never, preempt: () => preempted.push('c') });
  const batchWaiter = scheduler.acquire({ priority: 10, deadline: far(), signal: never, preempt: () => preempted.push('late') });
  assert.deepEqual(preempted, [], 'batch work does not preempt batch work');
  const interactive = scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  assert.deepEqual(preempted, ['b'], 'the least urgent holder gives way');
  scheduler.release('b');
  assert.equal(await interactive, 'b', 'the freed slot goes to the interactive request, not the waiting batch line');
  const second = scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  assert.deepEqual(preempted, ['b', 'c']);
  scheduler.release('c');
  assert.equal(await second, 'c');
  const third = scheduler.acquire({ priority: 0, deadline: far(), signal: never });
  assert.deepEqual(preempted, ['b', 'c'], 'nothing left to preempt: it waits');
  scheduler.release('a');
  assert.equal(await third, 'a');
  scheduler.release('a');
  assert.equal(await batchWaiter, 'a');
});

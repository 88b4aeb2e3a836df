import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../src/core/routing/circuit-breaker.js';

test('closed until N consecutive failures; a success in between resets the count', () => {
  const breaker = new CircuitBreaker(3, 1000);
  breaker.fail(0);
  breaker.fail(0);
  breaker.succeed();
  breaker.fail(0);
  breaker.fail(0);
  assert.equal(breaker.state(0), 'closed');
  assert.ok(breaker.canTake(0));
  breaker.fail(10);
  assert.equal(breaker.state(10), 'open');
  assert.equal(breaker.canTake(10), false);
  assert.equal(breaker.waitMs(10), 1000);
  assert.equal(breaker.waitMs(600), 410);
});

test('after the cool-down one probe goes through (half-open); its success closes the circuit', () => {
  const breaker = new CircuitBreaker(1, 1000);
  breaker.fail(0);
  assert.equal(breaker.canTake(999), false);
  assert.equal(breaker.state(1000), 'half-open');
  assert.ok(breaker.canTake(1000));
  breaker.take(1000);
  assert.equal(breaker.canTake(1001), false, 'one probe at a time');
  breaker.succeed();
  assert.equal(breaker.state(1002), 'closed');
  assert.ok(breaker.canTake(1002));
});

test("a failed probe opens the circuit for another cool-down; a probe without a verdict frees the slot", () => {
  const breaker = new CircuitBreaker(5, 1000);
  for (let index = 0; index < 5; index++) breaker.fail(0);
  breaker.take(1000);
  breaker.fail(1500);
  assert.equal(breaker.state(1500), 'open');
  assert.equal(breaker.canTake(2499), false);
  assert.ok(breaker.canTake(2500));
  breaker.take(2500);
  assert.equal(breaker.canTake(2500), false);
  breaker.release();
  assert.ok(breaker.canTake(2500), 'the client left: another probe may go');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { threadSplit } from '../../src/engine/llama/model-runner.js';

const MiB = 1024 * 1024;

test('batch_threads auto: all cores, for batches of about 256 MiB of weights x tokens', () => {
  // A 60 MiB model: batches of 5 tokens and more (5 x 60 >= 256) get the cores.
  assert.deepEqual(threadSplit({ threads: 1, batch_threads: 'auto', batch_threads_min_tokens: null }, 60 * MiB, 2), {
    threads: 1,
    batchThreads: 2,
    batchMinTokens: 5,
    promptMinTokens: 5,
  });
  // A 1 MiB model: only batches of 256 tokens and more; a step of prompts alone from 32 tokens.
  assert.equal(threadSplit({ threads: 1, batch_threads: 'auto', batch_threads_min_tokens: null }, MiB, 2).batchMinTokens, 256);
  assert.equal(threadSplit({ threads: 1, batch_threads: 'auto', batch_threads_min_tokens: null }, MiB, 2).promptMinTokens, 32);
  // A model larger than the work bound: any batch of 2 tokens or more.
  assert.equal(threadSplit({ threads: 1, batch_threads: 'auto', batch_threads_min_tokens: null }, 4096 * MiB, 16).batchMinTokens, 2);
  // Never fewer batch threads than single-token ones.
  assert.equal(threadSplit({ threads: 4, batch_threads: 'auto', batch_threads_min_tokens: null }, MiB, 2).batchThreads, 4);
});

test('batch_threads null keeps one thread count; a number and a minimum are taken as given', () => {
  const same = threadSplit({ threads: 1, batch_threads: null, batch_threads_min_tokens: null }, 60 * MiB, 8);
  assert.equal(same.batchThreads, 1);
  assert.deepEqual(threadSplit({ threads: 1, batch_threads: 3, batch_threads_min_tokens: 32 }, 60 * MiB, 8), {
    threads: 1,
    batchThreads: 3,
    batchMinTokens: 32,
    promptMinTokens: 32,
  });
});

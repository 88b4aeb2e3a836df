import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { LocalModelConfig } from '../../src/config/schema.js';
import type { NativeContextHooks } from '../../src/engine/llama/native-context.js';
import { PrefixCache, type Slot } from '../../src/engine/llama/prefix-cache.js';

/** PrefixCache.choose: which free sequence a prompt takes (no model needed: only token lists are read). */

const SCOPE = 'account-1';

function slot(tokens: number[], lastUsed: number): Slot {
  return { sequence: { contextTokens: tokens } as unknown as LlamaContextSequence, lastUsed, scope: SCOPE, pin: null };
}

async function cacheOf(slots: Slot[]): Promise<PrefixCache> {
  const config = { prompt_cache: { disk_entries: 0 } } as unknown as LocalModelConfig;
  return PrefixCache.create(slots, {} as NativeContextHooks, config, null);
}

const prompt = (first: number, length: number): Token[] => Array.from({ length }, (_, index) => (first + index) as Token);

describe('PrefixCache.choose', () => {
  test('idle: the longest shared prefix, then the least recently used', async () => {
    const slots = [slot(prompt(0, 10), 5), slot(prompt(100, 10), 1), slot(prompt(0, 40), 9), slot([], 3)];
    const cache = await cacheOf(slots);
    assert.equal(cache.choose(slots, prompt(0, 50), SCOPE, 0), slots[2]);
    assert.equal(cache.choose(slots, prompt(500, 50), SCOPE, 0), slots[1]);
    // Another scope's state counts as sharing nothing.
    assert.equal(cache.choose(slots, prompt(0, 50), 'account-2', 0), slots[1]);
  });

  test('while sequences run, a free neighbour of a busy one is taken over a scattered LRU slot', async () => {
    const slots = Array.from({ length: 8 }, (_, index) => slot(prompt(1000 * index, 20), 10 - index));
    const cache = await cacheOf(slots);
    // 0 and 1 are busy: 2 is next to them; 7 is the least recently used.
    const free = slots.slice(2);
    assert.equal(cache.choose(free, prompt(77_000, 30), SCOPE, 0), slots[2]);
    // 0-2 and 4 busy: 3 and 5 are next to busy ones, and of these 5 is the less recently used; 7, the least
    // recently used of all, is not taken.
    const withHole = [slots[3], slots[5], slots[6], slots[7]];
    assert.equal(cache.choose(withHole, prompt(77_000, 30), SCOPE, 0), slots[5]);
  });

  test('a prefix longer by at least 32 tokens still wins over adjacency, a shorter gain does not', async () => {
    const slots = Array.from({ length: 6 }, () => slot([], 0));
    slots[5] = slot(prompt(0, 60), 0);
    const cache = await cacheOf(slots);
    const free = slots.slice(2); // 0 and 1 busy: 2 is adjacent
    assert.equal(cache.choose(free, prompt(0, 80), SCOPE, 0), slots[5]);
    slots[5].sequence = { contextTokens: prompt(0, 20) } as unknown as LlamaContextSequence;
    assert.equal(cache.choose(free, prompt(0, 80), SCOPE, 0), slots[2]);
  });

  test('adjacency never overrides a pin', async () => {
    const slots = Array.from({ length: 4 }, () => slot(prompt(5000, 10), 0));
    slots[1].pin = { prefix: prompt(5000, 10), until: 100 };
    const cache = await cacheOf(slots);
    // 0 busy: 1 is adjacent but pinned to another prefix; 3 breaks no pin.
    assert.equal(cache.choose(slots.slice(1), prompt(0, 30), SCOPE, 50), slots[2]);
    // Once the pin has expired, the neighbour is taken.
    assert.equal(cache.choose(slots.slice(1), prompt(0, 30), SCOPE, 150), slots[1]);
  });
});

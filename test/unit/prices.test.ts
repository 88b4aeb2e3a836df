import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costMicros, toModelPrices, worstCaseMicros } from '../../src/core/billing/prices.js';

const demo = toModelPrices({ input: 0.1, cached_input: 0.025, output: 0.4 });

test('USD per 1M tokens become integer micro-USD per 1M tokens', () => {
  assert.deepEqual(demo, {
    inputMicrosPerMillion: 100_000,
    cachedInputMicrosPerMillion: 25_000,
    outputMicrosPerMillion: 400_000,
    cacheWriteMicrosPerMillion: 100_000,
  });
  assert.equal(toModelPrices({ input: 3, output: 15 }).cachedInputMicrosPerMillion, 3_000_000);
  assert.equal(toModelPrices({ input: 3, output: 15, cache_write: 3.75 }).cacheWriteMicrosPerMillion, 3_750_000);
});

test('exact values: 1M tokens of each kind', () => {
  assert.equal(costMicros(demo, { promptTokens: 1_000_000, cachedTokens: 0, completionTokens: 0 }), 100_000);
  assert.equal(costMicros(demo, { promptTokens: 1_000_000, cachedTokens: 1_000_000, completionTokens: 0 }), 25_000);
  assert.equal(costMicros(demo, { promptTokens: 0, cachedTokens: 0, completionTokens: 1_000_000 }), 400_000);
});

test('rounded once per request, half up', () => {
  // 10 prompt tokens at 0.1 micro each = 1 micro; 3 output at 0.4 = 1.2 -> 2.2 -> 2
  assert.equal(costMicros(demo, { promptTokens: 10, cachedTokens: 0, completionTokens: 3 }), 2);
  // 5 prompt (0.5) -> rounds half up to 1
  assert.equal(costMicros(demo, { promptTokens: 5, cachedTokens: 0, completionTokens: 0 }), 1);
  // 4 prompt (0.4) -> 0
  assert.equal(costMicros(demo, { promptTokens: 4, cachedTokens: 0, completionTokens: 0 }), 0);
  // 28 prompt of which 20 cached: 8*0.1 + 20*0.025 = 1.3; 30 output: 12 -> 13.3 -> 13
  assert.equal(costMicros(demo, { promptTokens: 28, cachedTokens: 20, completionTokens: 30 }), 13);
});

test('cached tokens cost exactly the price difference less', () => {
  const full = costMicros(demo, { promptTokens: 1000, cachedTokens: 0, completionTokens: 100 });
  const cached = costMicros(demo, { promptTokens: 1000, cachedTokens: 800, completionTokens: 100 });
  assert.equal(full - cached, (800 * (100_000 - 25_000)) / 1_000_000);
});

test('a rational multiplier (batch discount) applies before the single rounding', () => {
  assert.equal(costMicros(demo, { promptTokens: 0, cachedTokens: 0, completionTokens: 1_000_000 }, [1, 2]), 200_000);
  // 3 output tokens: 1.2 micro, halved 0.6 -> 1
  assert.equal(costMicros(demo, { promptTokens: 0, cachedTokens: 0, completionTokens: 3 }, [1, 2]), 1);
});

test('the worst case prices every prompt token uncached and every output token', () => {
  assert.equal(worstCaseMicros(demo, 1000, 1000), 500);
  assert.ok(worstCaseMicros(demo, 1000, 10) >= costMicros(demo, { promptTokens: 1000, cachedTokens: 900, completionTokens: 10 }));
});

test('large requests stay exact (no float drift)', () => {
  const big = toModelPrices({ input: 15, output: 75 });
  assert.equal(costMicros(big, { promptTokens: 123_456_789, cachedTokens: 0, completionTokens: 987_654_321 }), 75_925_925_910);
});

test('cache writes are a part of the prompt, billed at the cache-write price', () => {
  const anthropicLike = toModelPrices({ input: 3, cached_input: 0.3, output: 15, cache_write: 3.75 });
  // 1000 prompt tokens: 600 cached (0.3 each = 180), 300 written (3.75 each = 1125), 100 plain (3 each = 300); 10 out (150)
  assert.equal(costMicros(anthropicLike, { promptTokens: 1000, cachedTokens: 600, cacheWriteTokens: 300, completionTokens: 10 }), 1755);
  assert.equal(
    costMicros(anthropicLike, { promptTokens: 1000, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 0 }),
    costMicros(anthropicLike, { promptTokens: 1000, cachedTokens: 0, completionTokens: 0 }),
  );
});

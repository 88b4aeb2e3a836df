import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, formatRateLimitHeaders } from '../../src/core/ratelimit/headers.js';

test('durations are written as OpenAI (Go) writes them', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [-5, '0s'],
    [20, '20ms'],
    [999.2, '1s'],
    [1000, '1s'],
    [1500, '1.5s'],
    [8640, '8.64s'],
    [60_000, '1m0s'],
    [90_500, '1m30.5s'],
    [360_000, '6m0s'],
    [3_723_004, '1h2m3.004s'],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, `${ms} ms`);
});

test('headers of set limits only', () => {
  assert.deepEqual(formatRateLimitHeaders({}), {});
  assert.deepEqual(
    formatRateLimitHeaders({ limitRequests: 10, remainingRequests: 9, resetRequestsMs: 6000, limitTokens: 1000, remainingTokens: 0, resetTokensMs: 360_000 }),
    {
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '9',
      'x-ratelimit-reset-requests': '6s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '6m0s',
    },
  );
});

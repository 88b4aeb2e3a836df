import type { RateLimitHeaders } from './rate-limiter.js';

/**
 * OpenAI's x-ratelimit-* response headers. Resets are durations in OpenAI's (Go's) format: "20ms", "1s",
 * "8.64s", "6m0s". Headers of unset limits are left out, so an unlimited key gets none.
 */
export function formatRateLimitHeaders(headers: RateLimitHeaders): Record<string, string> {
  const map: Record<string, string> = {};
  const put = (name: string, value: number | undefined, format: (value: number) => string = String): void => {
    if (value !== undefined) map[name] = format(value);
  };
  put('x-ratelimit-limit-requests', headers.limitRequests);
  put('x-ratelimit-remaining-requests', headers.remainingRequests);
  put('x-ratelimit-reset-requests', headers.resetRequestsMs, formatDuration);
  put('x-ratelimit-limit-tokens', headers.limitTokens);
  put('x-ratelimit-remaining-tokens', headers.remainingTokens);
  put('x-ratelimit-reset-tokens', headers.resetTokensMs, formatDuration);
  return map;
}

/** Milliseconds (rounded up) as a Go duration string: "0s", "350ms", "1.5s", "1m0s", "1h2m3s". */
export function formatDuration(milliseconds: number): string {
  const ms = Math.max(0, Math.ceil(milliseconds));
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  const secondsText = `${Number(seconds.toFixed(3))}s`;
  if (hours > 0) return `${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${minutes}m${secondsText}`;
  return secondsText;
}

/**
 * A failed call to an upstream deployment, as data (vercel/ai's APICallError): what the upstream answered, and
 * whether another try (on the same or another deployment) may succeed. Only retryable errors are retried or failed
 * over; the router maps the rest to a typed core error for the client.
 */
export class UpstreamError extends Error {
  /** HTTP status of the upstream's answer; null when none came (connection refused or reset, timeout, cut stream). */
  readonly status: number | null;
  /** The upstream's response body (truncated to 4 KB), or null. Never shown to clients as is: it may echo secrets. */
  readonly body: string | null;
  /** 408, 409, 429, 5xx, connection errors and timeouts before the first byte. */
  readonly retryable: boolean;
  /** From the upstream's `retry-after` (seconds or an HTTP date) or `retry-after-ms`, ms; null when absent. */
  readonly retryAfterMs: number | null;
  /** Whether the upstream did not answer in time (a timeout rather than a refusal). */
  readonly timedOut: boolean;
  /** The deployment that failed (its base URL and model), for logs and metrics. */
  readonly deployment: string;

  constructor(
    message: string,
    options: { deployment: string; status?: number | null; body?: string | null; retryable?: boolean; retryAfterMs?: number | null; timedOut?: boolean; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamError';
    this.deployment = options.deployment;
    this.status = options.status ?? null;
    this.body = options.body ?? null;
    this.timedOut = options.timedOut ?? false;
    this.retryable = options.retryable ?? (this.status === null || isRetryableStatus(this.status));
    this.retryAfterMs = options.retryAfterMs ?? null;
  }

  /** The message the upstream gave in an OpenAI- or Anthropic-shaped error body, if any. */
  upstreamMessage(): string | null {
    if (this.body === null) return null;
    try {
      const parsed = JSON.parse(this.body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
      const candidate =
        typeof parsed.error === 'object' && parsed.error !== null ? parsed.error.message : (parsed.error ?? parsed.message ?? parsed.detail);
      return typeof candidate === 'string' && candidate.length > 0 ? candidate : null;
    } catch {
      return null;
    }
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** `retry-after-ms`, else `retry-after` (delta seconds or an HTTP date), in ms; null when absent or unreadable. */
export function parseRetryAfter(headers: { get(name: string): string | null }, now: number = Date.now()): number | null {
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== null && milliseconds.trim() !== '' && Number.isFinite(Number(milliseconds))) return Math.max(0, Number(milliseconds));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

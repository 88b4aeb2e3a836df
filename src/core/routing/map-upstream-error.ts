import { UpstreamError } from '../../upstream/upstream-error.js';
import { TokenmillError } from '../errors.js';

/**
 * The client's view of an upstream failure that was not (or no longer) retried. The client's own mistakes that the
 * upstream caught (400, 413, 422) keep the upstream's message; everything else is the upstream's problem, not the
 * client's: a 503 `upstream_error` (401/403/404 mean the deployment is misconfigured; 5xx and connection errors that
 * outlasted retries and fallbacks), 429 `upstream_rate_limited` and 504 `upstream_timeout`. Upstream bodies are
 * never passed through for those: they may name the deployment's account or echo its key.
 */
export function mapUpstreamError(error: unknown, model: string): unknown {
  if (!(error instanceof UpstreamError)) return error;
  const upstreamMessage = error.upstreamMessage();
  const upstreamParam = readParam(error.body);
  if (error.timedOut) {
    return new TokenmillError('timeout', 'upstream_timeout', `The upstream serving '${model}' did not answer in time.`, { cause: error });
  }
  switch (error.status) {
    case 400:
    case 422:
      return new TokenmillError('invalid_request', 'upstream_invalid_request', upstreamMessage ?? `The upstream serving '${model}' refused the request.`, {
        param: upstreamParam,
        cause: error,
      });
    case 413:
      return new TokenmillError('payload_too_large', 'request_too_large', upstreamMessage ?? 'The request is larger than the upstream accepts.', { cause: error });
    case 429:
      return new TokenmillError('overloaded', 'upstream_rate_limited', `The upstream serving '${model}' is rate limited; retry later.`, {
        retryAfterSeconds: Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000)),
        cause: error,
      });
    case 401:
    case 403:
      return new TokenmillError('unavailable', 'upstream_error', `The upstream serving '${model}' refused the server's credentials (${error.status}).`, { cause: error });
    case null:
      if (error.retryable) {
        return new TokenmillError('unavailable', 'upstream_error', `The upstream serving '${model}' could not be reached.`, { cause: error });
      }
      return new TokenmillError('unavailable', 'upstream_error', `The upstream serving '${model}' failed: ${upstreamMessage ?? 'a malformed answer'}.`, { cause: error });
    default:
      return new TokenmillError('unavailable', 'upstream_error', `The upstream serving '${model}' failed (status ${error.status}).`, { cause: error });
  }
}

function readParam(body: string | null): string | null {
  if (body === null) return null;
  try {
    const param = (JSON.parse(body) as { error?: { param?: unknown } }).error?.param;
    return typeof param === 'string' ? param : null;
  } catch {
    return null;
  }
}

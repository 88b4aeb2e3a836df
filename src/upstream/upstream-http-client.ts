import type { AnthropicDeploymentConfig, OpenAIDeploymentConfig } from '../config/schema.js';
import { AbortedError, TokenmillError } from '../core/errors.js';
import { HttpTransport, type TransportResponse } from './http-transport.js';
import { RequestGuard } from './request-guard.js';
import { parseRetryAfter, UpstreamError } from './upstream-error.js';

/** Upstream bodies kept in errors (for logs), characters. */
const BODY_LIMIT = 4096;

/**
 * What every upstream deployment kind has in the catalog: where it is, the model it names, its key (scrubbed from
 * every upstream body kept in an error: upstreams may echo it), the longest wait for the first byte or between chunks
 * and the longest a request may take in all (ms).
 */
export type UpstreamDeployment = Pick<OpenAIDeploymentConfig | AnthropicDeploymentConfig, 'base_url' | 'model' | 'api_key' | 'timeout_ms' | 'total_timeout_ms'>;

/**
 * What every upstream kind does the same over HTTP: its request guard (timeouts and the caller's abort), JSON POSTs
 * whose non-2xx answers become `UpstreamError`s (status, scrubbed body, retry-after), and the meaning of a thrown
 * error. Kinds differ only in their wire formats.
 */
export class UpstreamHttpClient {
  readonly name: string;
  private readonly transport: HttpTransport;

  /**
   * `kind` (`openai`, `anthropic`) names the deployment in errors and logs with the base URL and model; `headers` go
   * with every request, the key included.
   */
  constructor(
    kind: string,
    private readonly deployment: UpstreamDeployment,
    private readonly headers: Record<string, string>,
    private readonly now: () => number,
  ) {
    const baseUrl = deployment.base_url.replace(/\/+$/, '');
    this.name = `${kind} ${baseUrl} ${deployment.model}`;
    this.transport = new HttpTransport(baseUrl);
  }

  /** The guard of one request ending by `deadline` (ms since epoch) at the latest. */
  guard(signal: AbortSignal, deadline: number): RequestGuard {
    return new RequestGuard(signal, this.deployment.timeout_ms, Math.min(this.deployment.total_timeout_ms, deadline - this.now()));
  }

  /** POSTs a JSON body; an answer other than 2xx becomes an `UpstreamError` holding its status and body. */
  async post(path: string, body: unknown, guard: RequestGuard): Promise<TransportResponse> {
    const response = await this.transport.post(path, this.headers, JSON.stringify(body), guard);
    guard.touch();
    if (response.status >= 200 && response.status < 300) return response;
    const text = this.scrub((await response.text().catch(() => '')).slice(0, BODY_LIMIT));
    throw new UpstreamError(`${this.name} answered ${response.status}`, {
      deployment: this.name,
      status: response.status,
      body: text,
      retryAfterMs: parseRetryAfter({ get: response.header }, this.now()),
    });
  }

  /** An error for stream data the upstream should not have sent (`what`: e.g. "a stream chunk is not JSON"); not retried. */
  badData(what: string, data: string): UpstreamError {
    return new UpstreamError(`${this.name}: ${what}`, { deployment: this.name, body: this.scrub(data.slice(0, BODY_LIMIT)), retryable: false });
  }

  /** What a thrown error means: the caller left, a timer fired, the connection failed, or a typed error as it is. */
  failure(error: unknown, guard: RequestGuard): unknown {
    if (error instanceof UpstreamError || error instanceof AbortedError) return error;
    if (guard.firedBy === 'client') return new AbortedError();
    if (guard.firedBy === 'idle' || guard.firedBy === 'total') {
      const limit = guard.firedBy === 'idle' ? `${this.deployment.timeout_ms} ms without an answer` : 'its total time limit';
      return new UpstreamError(`${this.name} timed out (${limit})`, { deployment: this.name, timedOut: true, retryable: true, cause: error });
    }
    if (error instanceof TokenmillError) return error;
    const failed = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const detail = failed.code ?? failed.cause?.code ?? failed.message;
    return new UpstreamError(`${this.name}: connection failed (${detail})`, { deployment: this.name, retryable: true, cause: error });
  }

  /** Upstream bodies may echo the key that was sent (e.g. "Incorrect API key provided: sk-..."). */
  scrub(text: string): string {
    return this.deployment.api_key === null ? text : text.split(this.deployment.api_key).join('[redacted]');
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.transport.close();
  }
}

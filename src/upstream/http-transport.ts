import http from 'node:http';
import https from 'node:https';

/** An upstream's answer: status, headers (lower-case names) and the body as it arrives. */
export interface TransportResponse {
  status: number;
  header(name: string): string | null;
  body: AsyncIterable<Uint8Array>;
  /** Reads the whole body as text (for errors and JSON answers). */
  text(): Promise<string>;
}

/**
 * POSTs JSON to one upstream over node:http(s) with a keep-alive agent of its own. Not fetch: on loopback, Node 20's
 * fetch (undici) costs about 0.25-0.4 ms more per request at p50 and far more at p99 than http.request
 * (docs/decisions/0013-upstream-routing.md). Aborting `signal` destroys the request and its socket.
 */
export class HttpTransport {
  private readonly agent: http.Agent;
  private readonly secure: boolean;
  /** The base URL parsed once (parsing a URL string per request showed in profiles). */
  private readonly target: { hostname: string; port: number | undefined; pathPrefix: string };

  constructor(baseUrl: string) {
    this.secure = baseUrl.startsWith('https:');
    const options = { keepAlive: true, keepAliveMsecs: 1000, scheduling: 'lifo' as const };
    this.agent = this.secure ? new https.Agent(options) : new http.Agent(options);
    const url = new URL(baseUrl);
    this.target = {
      // URL keeps IPv6 literals in brackets; http.request wants them bare.
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? undefined : Number(url.port),
      pathPrefix: url.pathname.replace(/\/$/, ''),
    };
  }

  post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<TransportResponse> {
    return new Promise((resolve, reject) => {
      const request = (this.secure ? https : http).request(
        {
          hostname: this.target.hostname,
          port: this.target.port,
          path: `${this.target.pathPrefix}${path}`,
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          signal,
        },
        (response) => {
          resolve({
            status: response.statusCode ?? 0,
            header: (name) => {
              const value = response.headers[name];
              return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
            },
            body: response,
            text: async () => {
              const chunks: Buffer[] = [];
              for await (const chunk of response) chunks.push(chunk as Buffer);
              return Buffer.concat(chunks).toString('utf8');
            },
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

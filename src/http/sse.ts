import type { ServerResponse } from 'node:http';

/**
 * A Server-Sent Events response. Headers go out lazily: a stream whose first event (or error) arrives before the
 * first keep-alive is due can still answer with a plain HTTP error status.
 */
export class SseWriter {
  private started = false;

  constructor(
    private readonly response: ServerResponse,
    private readonly headers: Record<string, string>,
  ) {}

  get headersSent(): boolean {
    return this.started;
  }

  /** False once the client is gone. */
  get writable(): boolean {
    return !this.response.destroyed && !this.response.writableEnded;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.response.writeHead(200, {
      ...this.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Flush the headers now, so clients see the stream begin.
    this.response.flushHeaders();
  }

  data(payload: string): void {
    this.start();
    if (this.writable) this.response.write(`data: ${payload}\n\n`);
  }

  event(name: string, payload: string): void {
    this.start();
    if (this.writable) this.response.write(`event: ${name}\ndata: ${payload}\n\n`);
  }

  /** A comment line: proxies see traffic, clients ignore it. */
  ping(): void {
    this.start();
    if (this.writable) this.response.write(': ping\n\n');
  }

  end(): void {
    this.start();
    if (this.writable) this.response.end();
  }
}

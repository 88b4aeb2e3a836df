import type { ServerResponse } from 'node:http';

/**
 * A Server-Sent Events response. Headers go out lazily: a stream whose first event (or error) arrives before the
 * first keep-alive is due can still answer with a plain HTTP error status.
 */
export class SseWriter {
  private started = false;
  /** Events queued since the last flush. */
  private pending = '';
  private flushScheduled = false;
  private flushSoonScheduled = false;

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
      // No `connection` header: Node's own says keep-alive or close as the request asked (forcing keep-alive told a
      // client that sent `Connection: close` to reuse the socket, whose next request Node then refused with a 400).
      'x-accel-buffering': 'no',
    });
    // No flushHeaders(): the first event is written at once (see queue), and goes out with the headers in one packet.
  }

  data(payload: string): void {
    this.queue(`data: ${payload}\n\n`);
  }

  event(name: string, payload: string): void {
    this.queue(`event: ${name}\ndata: ${payload}\n\n`);
  }

  /** A comment line: proxies see traffic, clients ignore it. */
  ping(): void {
    this.queue(': ping\n\n');
  }

  /** Writes what is queued and ends the response, in one write (the chunked terminator goes with the last events). */
  end(): void {
    this.start();
    const text = this.take();
    if (this.writable) this.response.end(text);
  }

  /**
   * Events go out two event-loop turns later, in one write. A token arrives just before node-llama-cpp dispatches
   * the next decode step (on `setImmediate`); writing after that dispatch lets the socket write overlap the decode on
   * llama.cpp's thread instead of delaying it (measured: +10-15% tokens/s on the 260K model, where the write costs
   * about a tenth of a token). Nothing is held longer than those two turns, so tokens still stream as generated.
   * The first event is not deferred (see flushSoon).
   */
  private queue(text: string): void {
    const first = !this.started;
    this.start();
    this.pending += text;
    if (first) {
      // The first event (the first token, or a keep-alive) is the stream's start: its latency is the client's time
      // to first token, so it goes out with the headers as soon as this turn's work is done.
      this.flushSoon();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => setImmediate(() => this.flush()));
  }

  /**
   * Writes what is queued once the work of this event-loop turn is done (`process.nextTick`: after the promise jobs
   * now queued), not later: the first token, whose latency is the client's time to first token. Events that come in
   * the same turn (an upstream's chunk often holds several, or the whole answer) share the write: one `writev` and
   * one wake-up of the client instead of one per event (a loopback write costs ~50-80 us on the 2-vCPU VM).
   */
  flushSoon(): void {
    if (this.flushSoonScheduled) return;
    this.flushSoonScheduled = true;
    process.nextTick(() => {
      this.flushSoonScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const text = this.take();
    if (text.length > 0 && this.writable) this.response.write(text);
  }

  /** What is queued, now no longer (a flush still scheduled then finds nothing). */
  private take(): string {
    this.flushScheduled = false;
    const text = this.pending;
    this.pending = '';
    return text;
  }
}

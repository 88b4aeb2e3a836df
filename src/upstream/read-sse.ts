import type { RequestGuard } from './request-guard.js';

/**
 * An incremental parser of a server-sent event stream: `push` takes the next bytes and returns the `data:` payloads
 * of the events they complete, one per event (multi-line data joined with `\n`); comments and other fields are
 * skipped; `end` returns what the last, unterminated event held. The `[DONE]` sentinel is returned like any payload.
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private data: string[] = [];

  push(chunk: Uint8Array): string[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const payloads: string[] = [];
    const buffer = this.buffer;
    // Lines are cut out of the buffer by position; what follows the last newline stays for the next chunk.
    let start = 0;
    let newline: number;
    while ((newline = buffer.indexOf('\n', start)) !== -1) {
      const end = newline > start && buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      if (end === start) {
        if (this.data.length > 0) payloads.push(this.data.length === 1 ? this.data[0] : this.data.join('\n'));
        this.data = [];
      } else if (buffer.startsWith('data:', start)) {
        this.data.push(buffer.slice(buffer.charCodeAt(start + 5) === 32 ? start + 6 : start + 5, end));
      }
      start = newline + 1;
    }
    this.buffer = start === 0 ? buffer : buffer.slice(start);
    return payloads;
  }

  end(): string[] {
    let rest = this.buffer + this.decoder.decode();
    this.buffer = '';
    if (rest.endsWith('\r')) rest = rest.slice(0, -1);
    if (rest.startsWith('data:')) this.data.push(rest.slice(rest.startsWith('data: ') ? 6 : 5));
    const payloads = this.data.length > 0 ? [this.data.join('\n')] : [];
    this.data = [];
    return payloads;
  }
}

/**
 * An upstream's SSE stream, read chunk by chunk: `next` gives the payloads of the next chunk of the body that completes
 * at least one event (the caller turns them into one batch of events), each chunk re-arming the guard's idle timer,
 * and null once the body ended. When the stream's last event has come ([DONE], message_stop), the caller calls
 * `handOver`: the answer is complete at once, and the body's end is read in the background so that the keep-alive
 * connection survives (an unread body would destroy it), under the guard's idle and total timers but no longer the
 * caller's abort (see RequestGuard.handOver). `close` (in the caller's finally) closes a body that was neither read to
 * its end nor handed over (an error, the caller stopping): the request is aborted. A class rather than a generator:
 * the stream's last event reaches the caller without another step through it.
 */
export class UpstreamSseReader {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private readonly parser = new SseParser();
  /** The body ended, was handed over or closed: nothing more is read here. */
  private done = false;

  constructor(
    body: AsyncIterable<Uint8Array>,
    private readonly guard: RequestGuard,
  ) {
    this.chunks = body[Symbol.asyncIterator]();
  }

  async next(): Promise<string[] | null> {
    while (!this.done) {
      const next = await this.chunks.next();
      if (next.done) {
        this.done = true;
        const rest = this.parser.end();
        return rest.length > 0 ? rest : null;
      }
      this.guard.touch();
      const payloads = this.parser.push(next.value);
      if (payloads.length > 0) return payloads;
    }
    return null;
  }

  handOver(): void {
    if (this.done) return;
    this.done = true;
    drainInBackground(this.chunks, this.guard);
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chunks.return?.(undefined).catch(() => {});
  }
}
function drainInBackground(chunks: AsyncIterator<Uint8Array>, guard: RequestGuard): void {
  const release = guard.handOver();
  void (async () => {
    try {
      while (!(await chunks.next()).done) guard.touch();
      release(false);
    } catch {
      release(true);
    }
  })();
}

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
 * An upstream's SSE payloads, as the payloads of each chunk of the body that completes at least one (the caller
 * turns them into one batch of events), each chunk re-arming the guard's idle timer, until the body ends or, checked
 * after the caller handled a chunk's payloads, `ended()` says the stream's last event ([DONE], message_stop) has
 * come. Then the answer is complete at once, and the body's end is read in the background so that the keep-alive
 * connection survives (an unread body would destroy it), under the guard's idle and total timers but no longer the
 * caller's abort (see RequestGuard.handOver). Leaving early (an error, the caller stopping) closes the body, as a
 * for-await loop does.
 */
export async function* readUpstreamSse(body: AsyncIterable<Uint8Array>, guard: RequestGuard, ended: () => boolean): AsyncGenerator<string[]> {
  const chunks = body[Symbol.asyncIterator]();
  const parser = new SseParser();
  let handedOver = false;
  try {
    while (true) {
      const next = await chunks.next();
      if (next.done) {
        const rest = parser.end();
        if (rest.length > 0) yield rest;
        return;
      }
      guard.touch();
      const payloads = parser.push(next.value);
      if (payloads.length === 0) continue;
      yield payloads;
      if (ended()) {
        handedOver = true;
        drainInBackground(chunks, guard);
        return;
      }
    }
  } finally {
    if (!handedOver) await chunks.return?.(undefined).catch(() => {});
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

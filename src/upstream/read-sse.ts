import type { RequestGuard } from './request-guard.js';

/**
 * The `data:` payloads of a server-sent event stream, one per event (multi-line data joined with `\n`); comments
 * and other fields are skipped. Ends when the stream ends; the `[DONE]` sentinel is returned like any payload.
 */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    // Lines are cut out of the buffer by position; what follows the last newline stays for the next chunk.
    let start = 0;
    let newline: number;
    while ((newline = buffer.indexOf('\n', start)) !== -1) {
      const end = newline > start && buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      if (end === start) {
        if (data.length > 0) yield data.length === 1 ? data[0] : data.join('\n');
        data = [];
      } else if (buffer.startsWith('data:', start)) {
        data.push(buffer.slice(buffer.charCodeAt(start + 5) === 32 ? start + 6 : start + 5, end));
      }
      start = newline + 1;
    }
    buffer = start === 0 ? buffer : buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer.endsWith('\r')) buffer = buffer.slice(0, -1);
  if (buffer.startsWith('data:')) data.push(buffer.slice(buffer.startsWith('data: ') ? 6 : 5));
  if (data.length > 0) yield data.join('\n');
}

/**
 * An upstream's SSE payloads (`readSse`), each re-arming the guard's idle timer, until the body ends or, checked after
 * each payload was handled, `ended()` says the stream's last event ([DONE], message_stop) has come. Then the answer is
 * complete at once, and the body's end is read in the background so that the keep-alive connection survives (an
 * unread body would destroy it), under the guard's idle and total timers but no longer the caller's abort (see
 * RequestGuard.handOver). Leaving early (an error, the caller stopping) closes the stream, as a for-await loop does.
 */
export async function* readUpstreamSse(body: AsyncIterable<Uint8Array>, guard: RequestGuard, ended: () => boolean): AsyncGenerator<string> {
  const events = readSse(body)[Symbol.asyncIterator]();
  let handedOver = false;
  try {
    while (true) {
      const next = await events.next();
      if (next.done) return;
      guard.touch();
      yield next.value;
      if (ended()) {
        handedOver = true;
        drainInBackground(events, guard);
        return;
      }
    }
  } finally {
    if (!handedOver) await events.return(undefined).catch(() => {});
  }
}

function drainInBackground(events: AsyncIterator<string>, guard: RequestGuard): void {
  const release = guard.handOver();
  void (async () => {
    try {
      while (!(await events.next()).done) guard.touch();
      release(false);
    } catch {
      release(true);
    }
  })();
}

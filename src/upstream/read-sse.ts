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
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      let line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length > 0) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
  }
  buffer += decoder.decode();
  if (buffer.startsWith('data:')) data.push(buffer.slice(buffer.startsWith('data: ') ? 6 : 5));
  if (data.length > 0) yield data.join('\n');
}

/**
 * Reads what an SSE stream still holds after its last event ([DONE], message_stop) in the background, so that the
 * answer is complete at once while the upstream's keep-alive connection survives (leaving the body unread would
 * destroy it). The guard's idle and total timers still run: a body that never ends has its request aborted. The
 * caller's abort no longer applies. The guard is disposed when the body ends.
 */
export function drainInBackground(events: AsyncIterator<string>, guard: RequestGuard): void {
  guard.detachCaller();
  void (async () => {
    try {
      while (!(await events.next()).done) guard.touch();
      guard.dispose(false);
    } catch {
      guard.dispose(true);
    }
  })();
}

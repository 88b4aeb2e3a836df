import type { SseWriter } from './sse.js';

export interface StreamEventsOptions<Event> {
  /** The events in batches (runChoices): each batch is written in the same turn. */
  batches: AsyncIterator<Event[]>;
  writer: SseWriter;
  /** While nothing was written for this long, a `: ping` comment is sent. */
  pingIntervalMs: number;
  /** Writes a keep-alive; default: a `: ping` comment. */
  ping?: () => void;
  /**
   * Whether the stream is whole (every choice ended well), asked after each batch: then it is finished at once, and
   * the rest of the iteration (the engine's teardown, which yields nothing more) runs after.
   */
  complete(): boolean;
  /** Encodes and writes one event (all of a batch's in one turn, so they share the socket write). */
  write(event: Event): void;
  /** Writes the end of a successful stream. */
  finish(): void;
  /** Reports an error: before the stream started it can still be an HTTP error, after that an SSE error event. */
  fail(error: unknown, streamStarted: boolean): void;
}

/**
 * Pumps engine events into an SSE response. Tokens are written as they come (no buffering). Until the first event
 * arrives (queue wait, prompt evaluation) keep-alive comments flow, so proxies keep the connection.
 */
export async function streamEvents<Event>(options: StreamEventsOptions<Event>): Promise<void> {
  const { batches, writer } = options;
  let finished = false;
  let lastWrite = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastWrite >= options.pingIntervalMs) {
      if (options.ping) options.ping();
      else writer.ping();
      lastWrite = Date.now();
    }
  }, options.pingIntervalMs);
  try {
    while (true) {
      const next = await batches.next();
      if (next.done) break;
      for (const event of next.value) options.write(event);
      lastWrite = Date.now();
      if (options.complete()) {
        clearInterval(timer);
        options.finish();
        finished = true;
        while (!(await batches.next()).done) {
          // nothing more comes after every choice ended
        }
        return;
      }
    }
    clearInterval(timer);
    options.finish();
  } catch (error) {
    clearInterval(timer);
    // After the stream was finished, a failure of the teardown changes nothing the client got.
    if (!finished) options.fail(error, writer.headersSent);
  } finally {
    clearInterval(timer);
  }
}

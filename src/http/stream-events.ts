import type { SseWriter } from './sse.js';

/** How a consumer takes a generation's batches (see pumpBatches). */
export interface BatchConsumer<Event> {
  /** Handles one event (all of a batch's in one turn: a stream's share the socket write). */
  write(event: Event): void;
  /** Whether the answer is whole (every choice ended well), asked after each batch. */
  complete(): boolean;
  /** Ends the answer (a stream's end, or the whole JSON answer). */
  finish(): void;
  /** A failure of the engine's teardown after `finish`: it changes nothing the client got or is billed (to log). */
  teardownFailed(error: unknown): void;
}

/**
 * Feeds a generation's batches to `consumer.write` until they end or the answer is whole; then `finish` runs at once,
 * before the rest of the iteration (the engine's teardown: generators' finally blocks, the deployment's lease, which
 * yield nothing more). A failure before `finish` is thrown; one after it goes to `teardownFailed`.
 */
export async function pumpBatches<Event>(batches: AsyncIterator<Event[]>, consumer: BatchConsumer<Event>): Promise<void> {
  while (true) {
    const next = await batches.next();
    if (next.done) break;
    for (const event of next.value) consumer.write(event);
    if (consumer.complete()) break;
  }
  consumer.finish();
  try {
    while (!(await batches.next()).done) {
      // nothing more comes after every choice ended
    }
  } catch (error) {
    consumer.teardownFailed(error);
  }
}

export interface StreamEventsOptions<Event> extends BatchConsumer<Event> {
  /** The events in batches (runChoices). */
  batches: AsyncIterator<Event[]>;
  writer: SseWriter;
  /** While nothing was written for this long, a `: ping` comment is sent. */
  pingIntervalMs: number;
  /** Writes a keep-alive; default: a `: ping` comment. */
  ping?: () => void;
  /** Reports an error: before the stream started it can still be an HTTP error, after that an SSE error event. */
  fail(error: unknown, streamStarted: boolean): void;
}

/**
 * Pumps engine events into an SSE response (pumpBatches). Tokens are written as they come (no buffering). Until the
 * first event arrives (queue wait, prompt evaluation) keep-alive comments flow, so proxies keep the connection.
 */
export async function streamEvents<Event>(options: StreamEventsOptions<Event>): Promise<void> {
  const { batches, writer } = options;
  let lastWrite = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastWrite >= options.pingIntervalMs) {
      if (options.ping) options.ping();
      else writer.ping();
      lastWrite = Date.now();
    }
  }, options.pingIntervalMs);
  try {
    await pumpBatches(batches, {
      write(event) {
        options.write(event);
        lastWrite = Date.now();
      },
      complete: () => options.complete(),
      finish() {
        clearInterval(timer);
        options.finish();
      },
      teardownFailed: (error) => options.teardownFailed(error),
    });
  } catch (error) {
    clearInterval(timer);
    options.fail(error, writer.headersSent);
  } finally {
    clearInterval(timer);
  }
}

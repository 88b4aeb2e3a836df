import type { FastifyReply, FastifyRequest } from 'fastify';
import { AbortedError } from '../core/errors.js';
import type { InferenceRequest } from '../core/inference/inference-request.js';
import { runChoices, type ChoiceEvent } from '../core/inference/run-choices.js';
import type { AppDependencies } from './app.js';
import { mapError } from './errors.js';
import { SseWriter } from './sse.js';
import { streamEvents } from './stream-events.js';

export interface GenerationEncoders<Result> {
  /** Collects a whole response (non-streaming). */
  collector: { add(event: ChoiceEvent): void; result(): Result };
  /** Encodes stream chunks. */
  chunks: { encode(event: ChoiceEvent): string | null; usageChunk(): string | null };
}

/**
 * Runs a chat or completion request on the engine and answers with one JSON body or an SSE stream.
 * The client's disconnect aborts generation; errors before the stream starts are plain HTTP errors,
 * errors after it are an SSE `error` payload followed by the end of the stream.
 */
export async function serveGeneration<Result>(
  deps: AppDependencies,
  request: FastifyRequest,
  reply: FastifyReply,
  inference: InferenceRequest,
  encoders: GenerationEncoders<Result>,
): Promise<void> {
  const controller = new AbortController();
  const untrack = deps.lifecycle.track(controller);
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.on('close', onClose);
  try {
    const events = runChoices(deps.engine, inference, controller.signal);
    if (!inference.stream) {
      for await (const event of events) encoders.collector.add(event);
      await reply.send(encoders.collector.result());
      return;
    }
    reply.hijack();
    const writer = new SseWriter(reply.raw, { 'x-request-id': String(request.id) });
    await streamEvents({
      events: events[Symbol.asyncIterator](),
      writer,
      pingIntervalMs: deps.config.server.sse_ping_interval_ms,
      write(event) {
        const payload = encoders.chunks.encode(event);
        if (payload !== null) writer.data(payload);
      },
      finish() {
        const usage = encoders.chunks.usageChunk();
        if (usage !== null) writer.data(usage);
        writer.data('[DONE]');
        writer.end();
      },
      fail(error, started) {
        if (error instanceof AbortedError || controller.signal.aborted) {
          writer.end();
          return;
        }
        const mapped = mapError(error, String(request.id));
        if (mapped.unexpected) request.log.error({ err: error }, 'generation failed');
        if (!started && writer.writable) {
          reply.raw.writeHead(mapped.status, {
            ...mapped.headers,
            'content-type': 'application/json; charset=utf-8',
            'x-request-id': String(request.id),
          });
          reply.raw.end(JSON.stringify(mapped.body));
          return;
        }
        writer.data(JSON.stringify(mapped.body));
        writer.end();
      },
    });
  } finally {
    reply.raw.off('close', onClose);
    untrack();
  }
}

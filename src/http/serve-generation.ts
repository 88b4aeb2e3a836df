import type { FastifyReply, FastifyRequest } from 'fastify';
import { AbortedError } from '../core/errors.js';
import type { InferenceRequest } from '../core/inference/inference-request.js';
import { planAdmission } from '../core/inference/plan-admission.js';
import { runChoices, type ChoiceEvent } from '../core/inference/run-choices.js';
import type { Ticket } from '../core/metering/request-gate.js';
import { UsageMeter } from '../core/metering/usage-meter.js';
import { formatRateLimitHeaders } from '../core/ratelimit/headers.js';
import type { AppDependencies } from './app.js';
import { watchClient } from './client-abort.js';
import { mapError } from './errors.js';
import { SseWriter } from './sse.js';
import { pumpBatches, streamEvents } from './stream-events.js';

/** Encodes OpenAI stream chunks: unnamed `data:` events, ending with `[DONE]`. */
export interface ChunkEncoder {
  encode(event: ChoiceEvent): string | null;
  usageChunk(): string | null;
}

/** Writes a stream in an API's own framing (Anthropic's named events). */
export interface StreamEncoder {
  /** Writes what one event becomes (maybe nothing). */
  write(event: ChoiceEvent, writer: SseWriter): void;
  /** Writes the end of a successful stream. */
  finish(writer: SseWriter): void;
  /** Writes an error after the stream started; `body` is already in the API's error shape (see errors.ts). */
  fail(body: object, writer: SseWriter): void;
  /** A keep-alive, while nothing else was written for a while. */
  ping(writer: SseWriter): void;
}

export type GenerationEncoders<Result> = {
  /** Collects a whole response (non-streaming). */
  collector: { add(event: ChoiceEvent): void; result(): Result };
} & ({ chunks: ChunkEncoder } | { stream: StreamEncoder });

/**
 * Admits a chat or completion request (rate limits, funds), runs it on the engine, answers with one JSON body or
 * an SSE stream, and settles what was computed. The client's disconnect aborts generation (and what was generated
 * is billed); errors before the stream starts are plain HTTP errors, after it an SSE error payload.
 */
export async function serveGeneration<Result>(
  deps: AppDependencies,
  request: FastifyRequest,
  reply: FastifyReply,
  inference: InferenceRequest,
  encoders: GenerationEncoders<Result>,
  endpoint: string,
): Promise<void> {
  const arrivedAt = performance.now();
  const ticket = await admit(deps, request, inference, endpoint);
  const rateHeaders = ticket ? formatRateLimitHeaders(ticket.headers) : {};
  const client = watchClient(deps, reply);
  const meter = new UsageMeter(inference.n, arrivedAt);
  const observer = deps.metrics.watch(inference.model, arrivedAt);
  // Every choice ended, none with an error: the answer is whole, and goes out before the engine's teardown (the
  // generators' finally blocks, the deployment's lease) rather than after it.
  const choices = inference.prompts.length * inference.n;
  let ended = 0;
  let endFailed = false;
  const observe = (event: ChoiceEvent): void => {
    meter.observe(event);
    observer.observe(event);
    if (event.type === 'end') {
      ended++;
      if (event.error !== undefined) endFailed = true;
    }
  };
  const complete = (): boolean => ended === choices && !endFailed;
  const teardownFailed = (error: unknown): void => {
    request.log.error({ err: error, requestId: request.id }, 'generation failed after its answer');
  };
  let failure: unknown = null;
  try {
    const batches = runChoices(deps.engine, inference, client.signal);
    if (!inference.stream) {
      const { collector } = encoders;
      try {
        await pumpBatches(batches[Symbol.asyncIterator](), {
          write(event) {
            observe(event);
            collector.add(event);
          },
          complete,
          finish() {
            // Written on the raw response: Fastify's send (hooks, serializer, its header handling) cost ~100 us more
            // per request here than the write itself (docs/decisions/0020); no route sets reply hooks.
            reply.hijack();
            endJson(reply, 200, { ...replyHeaders(reply), ...rateHeaders }, collector.result());
          },
          teardownFailed,
        });
      } catch (error) {
        failure = error;
        throw error;
      }
      return;
    }
    const stream = 'stream' in encoders ? encoders.stream : openAIStream(encoders.chunks);
    const idHeaders = replyHeaders(reply);
    reply.hijack();
    const writer = new SseWriter(reply.raw, { ...idHeaders, ...rateHeaders });
    let contentSent = false;
    await streamEvents({
      batches: batches[Symbol.asyncIterator](),
      writer,
      pingIntervalMs: deps.config.server.sse_ping_interval_ms,
      complete,
      teardownFailed,
      write(event) {
        observe(event);
        stream.write(event, writer);
        // The first token is the client's time to first token: it goes out at once, not with the next decode step.
        if (!contentSent && (event.type === 'tool-call-delta' || (event.type === 'text-delta' && event.text.length > 0))) {
          contentSent = true;
          writer.flushSoon();
        }
      },
      ping() {
        stream.ping(writer);
      },
      finish() {
        stream.finish(writer);
        writer.end();
      },
      fail(error, started) {
        failure = error;
        if (error instanceof AbortedError || client.signal.aborted) {
          writer.end();
          return;
        }
        const mapped = mapError(error, String(request.id), request.url);
        if (mapped.unexpected) request.log.error({ err: error }, 'generation failed');
        if (!started && writer.writable) {
          endJson(reply, mapped.status, { ...mapped.headers, ...rateHeaders, ...idHeaders }, mapped.body);
          return;
        }
        stream.fail(mapped.body, writer);
        writer.end();
      },
    });
  } finally {
    observer.end();
    client.release();
    await ticket?.settle(meter.outcome(failure, client.signal.aborted)).catch((error: unknown) => {
      request.log.error({ err: error, requestId: request.id }, 'settling usage failed');
    });
  }
}

function openAIStream(chunks: ChunkEncoder): StreamEncoder {
  return {
    write(event, writer) {
      const payload = chunks.encode(event);
      if (payload !== null) writer.data(payload);
    },
    finish(writer) {
      const usage = chunks.usageChunk();
      if (usage !== null) writer.data(usage);
      writer.data('[DONE]');
    },
    fail(body, writer) {
      writer.data(JSON.stringify(body));
    },
    ping(writer) {
      writer.ping();
    },
  };
}

/** Answers a hijacked reply with one JSON body, in one write with its headers. */
function endJson(reply: FastifyReply, status: number, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body);
  reply.raw.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  reply.raw.end(text);
}

/** The headers set so far (the request ids of the onRequest hook), which a hijacked response must send itself. */
function replyHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (typeof value === 'string' || typeof value === 'number') headers[name] = String(value);
  }
  return headers;
}

/** Rate limits and funds, when accounts are enabled. */
async function admit(deps: AppDependencies, request: FastifyRequest, inference: InferenceRequest, endpoint: string): Promise<Ticket | null> {
  if (!deps.auth || request.principal.kind !== 'key') return null;
  const plan = await planAdmission(deps.engine, inference);
  return deps.auth.gate.admit(request.principal, { requestId: String(request.id), model: inference.model, endpoint, ...plan });
}


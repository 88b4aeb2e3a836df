import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../../core/errors.js';
import { embeddingRequestSchema } from '../../../protocol/openai/embeddings.js';
import { encodeEmbeddings } from '../../encoders/openai-embeddings.js';
import type { AppDependencies } from '../../app.js';
import { parseBody } from '../../parse-body.js';
import { authenticate, requireModelAccess } from '../../authenticate.js';
import { formatRateLimitHeaders } from '../../../core/ratelimit/headers.js';
import { outcomeStatus } from '../../../core/metering/usage-meter.js';
import { watchClient } from '../../client-abort.js';

export function registerEmbeddings(app: FastifyInstance, deps: AppDependencies): void {
  app.post('/v1/embeddings', { preHandler: authenticate(deps, 'inference') }, async (request, reply) => {
    const arrivedAt = performance.now();
    const wire = parseBody(embeddingRequestSchema, request.body);
    requireModelAccess(deps, request.principal, wire.model);
    if (wire.dimensions !== null && wire.dimensions !== undefined) {
      throw invalidRequest('dimensions is not supported by this model.', 'dimensions', 'unsupported_parameter');
    }
    const inputs: Array<string | number[]> =
      typeof wire.input === 'string'
        ? [wire.input]
        : typeof wire.input[0] === 'number'
          ? [wire.input as number[]]
          : (wire.input as Array<string | number[]>);
    const ticket =
      deps.auth && request.principal.kind === 'key'
        ? await deps.auth.gate.admit(request.principal, {
            requestId: String(request.id),
            model: wire.model,
            endpoint: '/v1/embeddings',
            promptTokens: await countInputs(deps, wire.model, inputs),
            maxCompletionTokens: 0,
          })
        : null;
    let promptTokensUsed: number | null = null;
    let failure: unknown = null;
    const client = watchClient(deps, reply);
    try {
      const { vectors, promptTokens } = await deps.engine.embed(wire.model, inputs, client.signal).catch((error: unknown) => {
        failure = error;
        throw error;
      });
      promptTokensUsed = promptTokens;
      const body = encodeEmbeddings(vectors, wire.model, promptTokens, wire.encoding_format);
      return reply.headers(ticket ? formatRateLimitHeaders(ticket.headers) : {}).send(body);
    } finally {
      client.release();
      await ticket
        ?.settle({
          usage: promptTokensUsed === null ? null : { promptTokens: promptTokensUsed, cachedTokens: 0, completionTokens: 0 },
          status: outcomeStatus(failure, client.signal.aborted),
          latencyMs: performance.now() - arrivedAt,
          ttftMs: null,
        })
        .catch((error: unknown) => request.log.error({ err: error }, 'settling usage failed'));
    }
  });
}

/** Tokens the inputs will take, for the reservation (strings are tokenized as `embed` does, with BOS). */
async function countInputs(deps: AppDependencies, model: string, inputs: Array<string | number[]>): Promise<number> {
  let total = 0;
  for (const input of inputs) {
    total += typeof input === 'string' ? await deps.engine.countPromptTokens(model, { kind: 'text', text: input }) : input.length;
  }
  return total;
}

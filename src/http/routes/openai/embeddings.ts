import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../../core/errors.js';
import { embeddingRequestSchema, type EmbeddingList } from '../../../protocol/openai/embeddings.js';
import type { AppDependencies } from '../../app.js';
import { parseBody } from '../../parse-body.js';
import { requireModel } from '../../require-model.js';

export function registerEmbeddings(app: FastifyInstance, deps: AppDependencies): void {
  app.post('/v1/embeddings', async (request, reply) => {
    const wire = parseBody(embeddingRequestSchema, request.body);
    requireModel(deps, wire.model);
    if (wire.dimensions !== null && wire.dimensions !== undefined) {
      throw invalidRequest('dimensions is not supported by this model.', 'dimensions', 'unsupported_parameter');
    }
    const inputs: Array<string | number[]> =
      typeof wire.input === 'string'
        ? [wire.input]
        : typeof wire.input[0] === 'number'
          ? [wire.input as number[]]
          : (wire.input as Array<string | number[]>);
    const controller = new AbortController();
    const untrack = deps.lifecycle.track(controller);
    const onClose = () => {
      if (!reply.raw.writableFinished) controller.abort();
    };
    reply.raw.on('close', onClose);
    try {
      const { vectors, promptTokens } = await deps.engine.embed(wire.model, inputs, controller.signal);
      const base64 = wire.encoding_format === 'base64';
      const body: EmbeddingList = {
        object: 'list',
        data: vectors.map((vector, index) => ({
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        })),
        model: wire.model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
      return reply.send(body);
    } finally {
      reply.raw.off('close', onClose);
      untrack();
    }
  });
}

import type { FastifyInstance } from 'fastify';
import { batchListQuerySchema, createBatchRequestSchema } from '../../../protocol/openai/batches.js';
import type { AppDependencies } from '../../app.js';
import { authenticate } from '../../authenticate.js';
import { batchToWire } from '../../encoders/batches.js';
import { parseBody } from '../../parse-body.js';
import { ownerOf } from './files.js';

/** OpenAI's Batch API: create, retrieve, list (newest first, `after`/`limit`), cancel. */
export function registerBatches(app: FastifyInstance, deps: AppDependencies): void {
  const batches = deps.batches;
  const preHandler = authenticate(deps, 'inference');

  app.post('/v1/batches', { preHandler }, async (request) => {
    const wire = parseBody(createBatchRequestSchema, request.body);
    const batch = await batches.create(ownerOf(request), {
      inputFileId: wire.input_file_id,
      endpoint: wire.endpoint,
      completionWindow: wire.completion_window,
      metadata: wire.metadata ?? null,
      keyId: request.principal.kind === 'key' ? request.principal.key.id : null,
    });
    return batchToWire(batch);
  });

  app.get('/v1/batches', { preHandler }, async (request) => {
    const query = parseBody(batchListQuerySchema, request.query);
    const page = await batches.list(ownerOf(request), { limit: query.limit, after: query.after ?? null });
    const data = page.batches.map(batchToWire);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id', { preHandler }, async (request) => batchToWire(await batches.get(ownerOf(request), request.params.id)));

  app.post<{ Params: { id: string } }>('/v1/batches/:id/cancel', { preHandler }, async (request) =>
    batchToWire(await batches.cancel(ownerOf(request), request.params.id)),
  );
}

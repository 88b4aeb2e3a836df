import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { invalidRequest, TokenmillError } from '../../../core/errors.js';
import { fileTooLarge } from '../../../core/files/file-service.js';
import { fileListQuerySchema, fileUploadFieldsSchema, type FileDeleted } from '../../../protocol/openai/files.js';
import type { AppDependencies } from '../../app.js';
import { authenticate } from '../../authenticate.js';
import { fileToWire } from '../../encoders/batches.js';
import { parseBody } from '../../parse-body.js';

/** Files and batches belong to the caller's account; without accounts, to everyone (''). */
export function ownerOf(request: FastifyRequest): string {
  return request.principal.kind === 'key' ? request.principal.account.id : '';
}

/** OpenAI's Files API: multipart upload (`file`, `purpose`), list, retrieve, content, delete. */
export function registerFiles(root: FastifyInstance, deps: AppDependencies): void {
  // In a scope of its own: @fastify/multipart's hooks (an async onRequest and onResponse on every request of the
  // scope it is registered in) and its multipart parser then apply to these routes only, not to every request.
  root.register(async (app) => {
    await registerFileRoutes(app, deps);
  });
}

async function registerFileRoutes(app: FastifyInstance, deps: AppDependencies): Promise<void> {
  const files = deps.files;
  const maxBytes = deps.config.files.max_bytes;
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 64 * 1024 } });
  const preHandler = authenticate(deps, 'inference');

  app.post('/v1/files', { preHandler }, async (request, reply) => {
    if (!request.isMultipart()) throw new TokenmillError('unsupported_media_type', 'unsupported_media_type', 'Upload files as multipart/form-data.');
    const fields: Record<string, string> = {};
    let upload: { filename: string; content: Buffer } | null = null;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') upload = { filename: part.filename, content: await part.toBuffer() };
        else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
      }
    } catch (error) {
      if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw fileTooLarge(maxBytes);
      throw error;
    }
    const { purpose } = parseBody(fileUploadFieldsSchema, fields);
    if (upload === null) throw invalidRequest("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
    const file = await files.upload(ownerOf(request), { purpose, filename: upload.filename || 'upload.jsonl', content: upload.content });
    return reply.send(fileToWire(file));
  });

  app.get('/v1/files', { preHandler }, async (request) => {
    const query = parseBody(fileListQuerySchema, request.query);
    const page = await files.list(ownerOf(request), { purpose: query.purpose ?? null, limit: query.limit, after: query.after ?? null, order: query.order });
    const data = page.files.map(fileToWire);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  });

  app.get<{ Params: { id: string } }>('/v1/files/:id', { preHandler }, async (request) => fileToWire(await files.get(ownerOf(request), request.params.id)));

  app.get<{ Params: { id: string } }>('/v1/files/:id/content', { preHandler }, async (request, reply) => {
    const { file, content } = await files.content(ownerOf(request), request.params.id);
    const type = file.filename.endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream';
    return reply.header('content-type', type).header('content-disposition', `attachment; filename="${file.filename.replace(/["\\\r\n]/g, '_')}"`).send(content);
  });

  app.delete<{ Params: { id: string } }>('/v1/files/:id', { preHandler }, async (request) => {
    await files.delete(ownerOf(request), request.params.id);
    const body: FileDeleted = { id: request.params.id, object: 'file', deleted: true };
    return body;
  });
}

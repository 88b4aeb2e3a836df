import type { FastifyInstance } from 'fastify';
import { translateChatRequest } from '../../../core/translate/openai-chat.js';
import { chatCompletionRequestSchema } from '../../../protocol/openai/chat-completions.js';
import type { AppDependencies } from '../../app.js';
import { ChatChunkEncoder, ChatCompletionCollector } from '../../encoders/openai-chat.js';
import { parseBody } from '../../parse-body.js';
import { authenticate, requireModelAccess } from '../../authenticate.js';
import { serveGeneration } from '../../serve-generation.js';
import { translateContext } from '../../translate-context.js';

export function registerChatCompletions(app: FastifyInstance, deps: AppDependencies): void {
  app.post('/v1/chat/completions', { preHandler: authenticate(deps, 'inference') }, async (request, reply) => {
    const wire = parseBody(chatCompletionRequestSchema, request.body);
    requireModelAccess(deps, request.principal, wire.model);
    const inference = translateChatRequest(wire, translateContext(deps, request));
    const meta = { id: `chatcmpl-${request.id}`, created: Math.floor(deps.now() / 1000), model: wire.model };
    await serveGeneration(deps, request, reply, inference, {
      collector: new ChatCompletionCollector(meta, inference.n, inference.n, inference.generation.logprobs !== null),
      chunks: new ChatChunkEncoder(meta, inference.n, inference.includeUsage),
    }, '/v1/chat/completions');
  });
}

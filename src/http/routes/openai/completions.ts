import type { FastifyInstance } from 'fastify';
import { translateCompletionRequest } from '../../../core/translate/openai-completion.js';
import { completionRequestSchema } from '../../../protocol/openai/completions.js';
import type { AppDependencies } from '../../app.js';
import { CompletionChunkEncoder, CompletionCollector } from '../../encoders/openai-completion.js';
import { parseBody } from '../../parse-body.js';
import { authenticate, requireModelAccess } from '../../authenticate.js';
import { serveGeneration } from '../../serve-generation.js';
import { translateContext } from '../../translate-context.js';

export function registerCompletions(app: FastifyInstance, deps: AppDependencies): void {
  app.post('/v1/completions', { preHandler: authenticate(deps, 'inference') }, async (request, reply) => {
    const wire = parseBody(completionRequestSchema, request.body);
    requireModelAccess(deps, request.principal, wire.model);
    const inference = translateCompletionRequest(wire, translateContext(deps, request));
    const choices = inference.prompts.length * inference.n;
    const meta = { id: `cmpl-${request.id}`, created: Math.floor(deps.now() / 1000), model: wire.model };
    await serveGeneration(deps, request, reply, inference, {
      collector: new CompletionCollector(meta, choices, inference.n, inference.generation.logprobs !== null),
      chunks: new CompletionChunkEncoder(meta, choices, inference.n, inference.includeUsage),
    }, '/v1/completions');
  });
}

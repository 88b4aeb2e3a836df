import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TokenmillError } from '../../../core/errors.js';
import { detokenizeRequestSchema, tokenizeRequestSchema } from '../../../protocol/llama/tokenize.js';
import type { AppDependencies } from '../../app.js';
import { parseBody } from '../../parse-body.js';
import { authenticate, requireModelAccess } from '../../authenticate.js';

/** llama-server's /tokenize and /detokenize; `model` defaults to the catalog's first model. */
export function registerTokenize(app: FastifyInstance, deps: AppDependencies): void {
  const pickModel = (request: FastifyRequest, model: string | null | undefined): string => {
    const chosen = model ?? deps.engine.models()[0]?.id;
    if (chosen === undefined) throw new TokenmillError('unavailable', 'model_loading', 'No model is loaded yet.');
    requireModelAccess(deps, request.principal, chosen);
    return chosen;
  };
  const preHandler = authenticate(deps, 'any');
  app.post('/tokenize', { preHandler }, async (request) => {
    const wire = parseBody(tokenizeRequestSchema, request.body);
    return { tokens: deps.engine.tokenize(pickModel(request, wire.model), wire.content, wire.add_special ?? false) };
  });
  app.post('/detokenize', { preHandler }, async (request) => {
    const wire = parseBody(detokenizeRequestSchema, request.body);
    return { content: deps.engine.detokenize(pickModel(request, wire.model), wire.tokens) };
  });
}

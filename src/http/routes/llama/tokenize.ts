import type { FastifyInstance } from 'fastify';
import { TokenmillError } from '../../../core/errors.js';
import { detokenizeRequestSchema, tokenizeRequestSchema } from '../../../protocol/llama/tokenize.js';
import type { AppDependencies } from '../../app.js';
import { parseBody } from '../../parse-body.js';
import { requireModel } from '../../require-model.js';

/** llama-server's /tokenize and /detokenize; `model` defaults to the catalog's first model. */
export function registerTokenize(app: FastifyInstance, deps: AppDependencies): void {
  const pickModel = (model: string | null | undefined): string => {
    const chosen = model ?? deps.engine.models()[0]?.id;
    if (chosen === undefined) throw new TokenmillError('unavailable', 'model_loading', 'No model is loaded yet.');
    requireModel(deps, chosen);
    return chosen;
  };
  app.post('/tokenize', async (request) => {
    const wire = parseBody(tokenizeRequestSchema, request.body);
    return { tokens: deps.engine.tokenize(pickModel(wire.model), wire.content, wire.add_special ?? false) };
  });
  app.post('/detokenize', async (request) => {
    const wire = parseBody(detokenizeRequestSchema, request.body);
    return { content: deps.engine.detokenize(pickModel(wire.model), wire.tokens) };
  });
}

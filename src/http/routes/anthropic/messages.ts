import type { FastifyInstance } from 'fastify';
import { translateCountTokensRequest, translateMessagesRequest } from '../../../core/translate/anthropic-messages.js';
import { countTokensRequestSchema, messagesRequestSchema, type CountTokensResponse } from '../../../protocol/anthropic/messages.js';
import type { AppDependencies } from '../../app.js';
import { authenticate, requireModelAccess } from '../../authenticate.js';
import { AnthropicMessageCollector, AnthropicStreamEncoder } from '../../encoders/anthropic-messages.js';
import { parseBody } from '../../parse-body.js';
import { serveGeneration } from '../../serve-generation.js';
import { translateContext } from '../../translate-context.js';

/**
 * Anthropic's Messages API over the same engine, accounts, limits and billing as the OpenAI routes. Errors under
 * /v1/messages take Anthropic's shape (errors.ts picks it by route); keys come in `x-api-key` or as a bearer token;
 * `anthropic-version` and `anthropic-beta` are accepted and ignored.
 */
export function registerMessages(app: FastifyInstance, deps: AppDependencies): void {
  const preHandler = authenticate(deps, 'inference');

  app.post('/v1/messages', { preHandler }, async (request, reply) => {
    const wire = parseBody(messagesRequestSchema, request.body);
    requireModelAccess(deps, request.principal, wire.model);
    const inference = translateMessagesRequest(wire, translateContext(deps, request));
    const meta = { id: `msg_${String(request.id).replace(/^req_/, '')}`, model: wire.model };
    await serveGeneration(
      deps,
      request,
      reply,
      inference,
      { collector: new AnthropicMessageCollector(meta), stream: new AnthropicStreamEncoder(meta) },
      '/v1/messages',
    );
  });

  /** The prompt's tokens as generation renders it (Anthropic does not bill this endpoint; neither do we). */
  app.post('/v1/messages/count_tokens', { preHandler }, async (request): Promise<CountTokensResponse> => {
    const wire = parseBody(countTokensRequestSchema, request.body);
    requireModelAccess(deps, request.principal, wire.model);
    return { input_tokens: await deps.engine.countPromptTokens(wire.model, translateCountTokensRequest(wire)) };
  });
}

import type { FastifyInstance } from 'fastify';
import { modelNotFound } from '../../../core/errors.js';
import type { ModelInfo } from '../../../engine/engine.js';
import type { ModelList, ModelObject } from '../../../protocol/openai/models.js';
import type { AppDependencies } from '../../app.js';
import { Authenticator } from '../../../core/accounts/authenticator.js';
import { authenticate } from '../../authenticate.js';

function toWire(model: ModelInfo): ModelObject {
  return { id: model.id, object: 'model', created: model.created, owned_by: model.ownedBy, max_model_len: model.contextSize };
}

export function registerModels(app: FastifyInstance, deps: AppDependencies): void {
  app.get('/v1/models', { preHandler: authenticate(deps, 'any') }, async (request) => {
    const visible = deps.engine.models().filter((model) => Authenticator.mayUseModel(request.principal, model.id));
    const body: ModelList = { object: 'list', data: visible.map(toWire) };
    return body;
  });
  app.get<{ Params: { id: string } }>('/v1/models/*', { preHandler: authenticate(deps, 'any') }, async (request) => {
    const id = (request.params as Record<string, string>)['*'];
    const model = deps.engine
      .models()
      .find((candidate) => candidate.id === id && Authenticator.mayUseModel(request.principal, candidate.id));
    if (!model) throw modelNotFound(id);
    return toWire(model);
  });
}

import type { FastifyReply, FastifyRequest } from 'fastify';
import { Authenticator, extractApiKey, type Principal } from '../core/accounts/authenticator.js';
import { modelNotFound, TokenmillError } from '../core/errors.js';
import type { AppDependencies } from './app.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the auth pre-handler of routes that need it. */
    principal: Principal;
  }
}

export type Audience = 'inference' | 'admin' | 'any';

/**
 * A pre-handler that authenticates the caller for a route. With auth disabled everyone is `anonymous` and may use
 * inference routes; admin routes then answer 404, since there are no accounts.
 */
export function authenticate(deps: AppDependencies, audience: Audience) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const auth = deps.auth;
    if (!auth) {
      if (audience === 'admin') {
        throw new TokenmillError('not_found', 'unknown_url', 'Accounts are disabled on this server (auth.enabled is false).');
      }
      request.principal = { kind: 'anonymous' };
      return;
    }
    const principal = await auth.authenticator.authenticate(extractApiKey(request.headers));
    if (audience === 'admin' && principal.kind !== 'admin') {
      throw new TokenmillError('permission', 'admin_only', 'This endpoint requires the admin key.');
    }
    if (audience === 'inference' && principal.kind === 'admin') {
      throw new TokenmillError('permission', 'admin_key_not_for_inference', 'The admin key cannot be used for inference: create an API key for an account.');
    }
    if (principal.kind === 'key') auth.touchKey(principal.key.id, principal.key.lastUsedAt);
    request.principal = principal;
  };
}

/** 404 `model_not_found` for unknown models and for models the key may not use (as OpenAI answers both). */
export function requireModelAccess(deps: AppDependencies, principal: Principal, model: string): void {
  if (!deps.engine.hasModel(model)) throw modelNotFound(model);
  if (!Authenticator.mayUseModel(principal, model)) {
    throw new TokenmillError('not_found', 'model_not_found', `The model '${model}' does not exist or you do not have access to it.`, { param: 'model' });
  }
}

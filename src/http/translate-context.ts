import type { FastifyRequest } from 'fastify';
import type { TranslateContext } from '../core/inference/inference-request.js';
import type { AppDependencies } from './app.js';

/** What the translators need from the server and the caller: the clock, the deadline and the prompt-cache scope. */
export function translateContext(deps: AppDependencies, request: FastifyRequest): TranslateContext {
  const principal = request.principal;
  return {
    now: deps.now(),
    requestTimeoutMs: deps.config.server.request_timeout_ms,
    cacheScope: principal.kind === 'key' ? principal.account.id : null,
  };
}

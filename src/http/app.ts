import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TokenmillConfig } from '../config/schema.js';
import { AbortedError, TokenmillError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { AccountService } from '../core/accounts/account-service.js';
import type { Authenticator } from '../core/accounts/authenticator.js';
import type { RequestGate } from '../core/metering/request-gate.js';
import type { ServingMetrics } from '../core/metrics/serving-metrics.js';
import type { BatchService } from '../core/batches/batch-service.js';
import type { FileService } from '../core/files/file-service.js';
import { errorShapeOf, mapError } from './errors.js';
import type { RequestLifecycle } from './request-lifecycle.js';
import { registerHealth } from './routes/health.js';
import { registerTokenize } from './routes/llama/tokenize.js';
import { registerChatCompletions } from './routes/openai/chat-completions.js';
import { registerCompletions } from './routes/openai/completions.js';
import { registerEmbeddings } from './routes/openai/embeddings.js';
import { registerModels } from './routes/openai/models.js';
import { registerMessages } from './routes/anthropic/messages.js';
import { registerAdminAccounts } from './routes/admin/accounts.js';
import { registerUsage } from './routes/usage.js';
import { registerBatches } from './routes/openai/batches.js';
import { registerFiles } from './routes/openai/files.js';

/** Accounts, keys, limits and billing; absent when `auth.enabled` is false. */
export interface AuthServices {
  authenticator: Authenticator;
  gate: RequestGate;
  accounts: AccountService;
  /** Records that a key was used (throttled; never delays the request). */
  touchKey(keyId: string, lastUsedAt: number | null): void;
}

/** Everything the HTTP layer needs, built by the composition root (main.ts) or by a test. */
export interface AppDependencies {
  config: TokenmillConfig;
  engine: Engine;
  auth: AuthServices | null;
  lifecycle: RequestLifecycle;
  metrics: ServingMetrics;
  /** Uploaded files and batches (they work with accounts disabled too, owned by everyone). */
  files: FileService;
  batches: BatchService;
  /** ms since epoch. */
  now: () => number;
  /** pino options or a logger instance, passed to Fastify. */
  logger: FastifyServerOptions['logger'];
}

/**
 * `req_` and 24 hex digits: 48 bits of the time in ms, then 48 random bits (randomUUID draws from a cached entropy
 * pool; randomBytes costs ~15 us per call here). The request id is its usage record's primary key: ids in time order
 * are inserted at the end of that index, one page written per group commit instead of a random page per record
 * (docs/decisions/0019).
 */
export function newRequestId(): string {
  const uuid = randomUUID();
  return `req_${Date.now().toString(16).padStart(12, '0').slice(-12)}${uuid.slice(0, 8)}${uuid.slice(9, 13)}`;
}

export function createApp(deps: AppDependencies): FastifyInstance {
  const app = Fastify({
    logger: deps.logger,
    bodyLimit: deps.config.server.body_limit_bytes,
    genReqId: newRequestId,
    requestIdHeader: false,
    // No per-request log lines: they cost time on the hot path; the usage ledger records every request.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
  });

  // Clients often send JSON without a content type (curl -d): parse every body as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new TokenmillError('invalid_request', 'invalid_json', `The request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });

  // A callback hook, not an async one: Fastify then runs the route in the same turn, without a promise in between.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // Anthropic's clients read the request id from `request-id`.
    if (errorShapeOf(request.url) === 'anthropic') reply.header('request-id', request.id);
    if (deps.lifecycle.closing && request.method === 'POST') {
      done(new TokenmillError('unavailable', 'server_shutting_down', 'The server is shutting down.'));
      return;
    }
    done();
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof AbortedError) {
      // The client is gone; nobody reads this.
      return reply.code(499).send();
    }
    const mapped = mapError(error, String(request.id), request.url);
    if (mapped.unexpected) request.log.error({ err: error, requestId: request.id }, 'unexpected error');
    return reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const unknown = new TokenmillError('not_found', 'unknown_url', `Unknown route: ${request.method} ${request.url.split('?')[0]}`);
    const mapped = mapError(unknown, String(request.id), request.url);
    reply.code(mapped.status).send(mapped.body);
  });

  registerHealth(app, deps);
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
  registerModels(app, deps);
  registerChatCompletions(app, deps);
  registerCompletions(app, deps);
  registerEmbeddings(app, deps);
  registerTokenize(app, deps);
  registerMessages(app, deps);
  registerAdminAccounts(app, deps);
  registerUsage(app, deps);
  registerFiles(app, deps);
  registerBatches(app, deps);
  return app;
}

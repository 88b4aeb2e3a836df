import type { FastifyInstance } from 'fastify';
import type { TokenmillConfig } from './config/schema.js';
import { LlamaEngine } from './engine/llama/llama-engine.js';
import { createApp } from './http/app.js';
import { RequestLifecycle } from './http/request-lifecycle.js';

export interface RunningServer {
  app: FastifyInstance;
  engine: LlamaEngine;
  /** The bound address, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Graceful shutdown: refuse new work, let in-flight requests finish within the grace period, then abort them. */
  shutdown(): Promise<void>;
}

/**
 * The composition root: config -> engine -> app -> listen. The server listens before the models are loaded, so
 * `/health` answers at once and `/ready` says when the models are in.
 */
export async function startServer(config: TokenmillConfig): Promise<RunningServer> {
  const lifecycle = new RequestLifecycle();
  let engineLog: ((level: 'warn' | 'error', message: string) => void) | undefined;
  const engine = new LlamaEngine({ models: config.models, log: (level, message) => engineLog?.(level, message) });
  const app = createApp({ config, engine, lifecycle, now: Date.now, logger: { level: config.server.log_level } });
  engineLog = (level, message) => app.log[level]({ source: 'llama.cpp' }, message);
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  try {
    await engine.start();
  } catch (error) {
    await app.close();
    throw error;
  }
  app.log.info({ url: address, models: engine.models().map((model) => model.id) }, 'Tokenmill is ready');

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      lifecycle.closing = true;
      const closed = app.close();
      const drained = await lifecycle.drain(config.server.shutdown_grace_ms);
      if (!drained) {
        app.log.warn({ inflight: lifecycle.size }, 'shutdown grace period over: aborting in-flight requests');
        lifecycle.abortAll();
      }
      // Connections that became idle after close() began are not closed by Fastify: close them now.
      app.server.closeIdleConnections();
      const forced = setTimeout(() => app.server.closeAllConnections(), 1000);
      await closed;
      clearTimeout(forced);
      await engine.close();
    })();
    return shuttingDown;
  };
  return { app, engine, url: address, shutdown };
}

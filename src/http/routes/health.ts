import type { FastifyInstance } from 'fastify';
import type { AppDependencies } from '../app.js';

/** Liveness (`/health`: the process serves HTTP) and readiness (`/ready`: every model is loaded). */
export function registerHealth(app: FastifyInstance, deps: AppDependencies): void {
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const ready = deps.engine.ready() && !deps.lifecycle.closing;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : deps.lifecycle.closing ? 'shutting_down' : 'loading',
      models: deps.engine.models().map((model) => model.id),
    });
  });
}

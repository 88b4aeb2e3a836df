import type { FastifyReply } from 'fastify';
import type { AppDependencies } from './app.js';

/** A request's abort signal: fired when the client goes away before the response is finished, or at shutdown. */
export interface ClientAbort {
  signal: AbortSignal;
  /** Stops watching the connection; call once the request is done. */
  release(): void;
}

export function watchClient(deps: AppDependencies, reply: FastifyReply): ClientAbort {
  const controller = new AbortController();
  const untrack = deps.lifecycle.track(controller);
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.on('close', onClose);
  return {
    signal: controller.signal,
    release() {
      reply.raw.off('close', onClose);
      untrack();
    },
  };
}

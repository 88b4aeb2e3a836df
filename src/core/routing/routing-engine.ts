import type { RoutingConfig } from '../../config/schema.js';
import type { Engine, EngineEvent, GenerateRequest, ModelInfo, Prompt } from '../../engine/engine.js';
import { UpstreamError } from '../../upstream/upstream-error.js';
import { AbortedError, invalidRequest, modelNotFound, TokenmillError } from '../errors.js';
import { Deployment, type DeploymentTarget } from './deployment.js';
import { mapUpstreamError } from './map-upstream-error.js';
import { pickDeployment } from './pick-deployment.js';

/** What happened to one attempt on a deployment (metrics). */
export type AttemptOutcome = 'success' | 'failure' | 'rejected' | 'cancelled';

/** One catalog model and where it runs. */
export interface RouteConfig {
  model: string;
  /** Context tokens clients are told about when no local deployment says. */
  contextSize: number;
  /** A local model whose tokenizer counts this model's prompts (when it has no local deployment); null: estimates. */
  tokenizer: string | null;
  routing: RoutingConfig;
  deployments: Array<{ target: DeploymentTarget; weight: number }>;
}

export interface RoutingEngineOptions {
  /** The engine of the local (llama) deployments, or null when every model is upstream. */
  local: Engine | null;
  routes: RouteConfig[];
  /** ms since epoch (a fake clock in tests). */
  now?: () => number;
  /** Waits `ms` (tests replace it); rejects with AbortedError when `signal` fires. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called after every attempt on a deployment (metrics). */
  onAttempt?: (model: string, deployment: string, outcome: AttemptOutcome) => void;
}

interface Route {
  config: RouteConfig;
  deployments: Deployment[];
  hasLocal: boolean;
}

/** A deployment serving one request, until `finish` says how it went. */
interface Lease {
  deployment: Deployment;
  finish(error: unknown): void;
}

/**
 * The engine the server talks to: it owns every catalog model and its deployments (the local llama engine's
 * models and upstream clients), balances requests between a model's deployments (least outstanding requests,
 * weighted), retries retryable failures with backoff (honouring `retry-after` up to a cap), then fails over to
 * the next deployment, and takes failing deployments out with a circuit breaker. A stream is never retried once
 * its first event has been yielded: later failures end it with an `end` event carrying the error.
 */
export class RoutingEngine implements Engine {
  private readonly routes = new Map<string, Route>();
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly startedAt = Math.floor(Date.now() / 1000);

  constructor(private readonly options: RoutingEngineOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? abortableSleep;
    for (const config of options.routes) {
      const breaker = { failures: config.routing.breaker_failures, cooldownMs: config.routing.breaker_cooldown_ms };
      const deployments = config.deployments.map(({ target, weight }) => new Deployment(target, weight, breaker));
      this.routes.set(config.model, { config, deployments, hasLocal: deployments.some((deployment) => deployment.target.local) });
    }
  }

  async start(): Promise<void> {
    await this.options.local?.start();
  }

  ready(): boolean {
    return this.options.local?.ready() ?? true;
  }

  models(): ModelInfo[] {
    const local = new Map((this.options.local?.models() ?? []).map((info) => [info.id, info]));
    const models: ModelInfo[] = [];
    for (const route of this.routes.values()) {
      const info = local.get(route.config.model);
      if (info) models.push(info);
      else if (!route.deployments.every((deployment) => deployment.target.local)) {
        models.push({ id: route.config.model, contextSize: route.config.contextSize, created: this.startedAt, ownedBy: 'tokenmill' });
      }
    }
    return models;
  }

  hasModel(model: string): boolean {
    const route = this.routes.get(model);
    if (!route) return false;
    // A local-only model is there once it is loaded (as before routing); an upstream one at once.
    return route.deployments.some((deployment) => !deployment.target.local) || (this.options.local?.hasModel(model) ?? false);
  }

  async countPromptTokens(model: string, prompt: Prompt): Promise<number> {
    const route = this.route(model);
    if (!route.hasLocal && route.config.tokenizer !== null && this.options.local) {
      return this.options.local.countPromptTokens(route.config.tokenizer, prompt);
    }
    // The local tokenizer counts exactly; upstreams estimate (also while the local model is still loading).
    const local = route.deployments.find((deployment) => deployment.target.local);
    const upstream = route.deployments.find((deployment) => !deployment.target.local);
    if (!local) return upstream!.target.countPromptTokens(prompt);
    try {
      return await local.target.countPromptTokens(prompt);
    } catch (error) {
      if (upstream && error instanceof TokenmillError && error.kind === 'unavailable') return upstream.target.countPromptTokens(prompt);
      throw error;
    }
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent[]> {
    const route = this.route(request.model);
    const { value, lease } = await this.acquire(route, signal, request.deadline, async (deployment) => {
      const iterator = deployment.target.generate(request, signal)[Symbol.asyncIterator]();
      try {
        return { iterator, first: await iterator.next() };
      } catch (error) {
        await iterator.return?.().catch(() => {});
        throw error;
      }
    });
    const { iterator } = value;
    let failure: unknown = null;
    try {
      let next = value.first;
      while (!next.done) {
        const batch = next.value;
        // The end event is the last one (Engine.generate); a failed one carries the client's view of the error.
        const last = batch[batch.length - 1];
        if (last.type === 'end' && last.error !== undefined) {
          failure = last.error;
          last.error = mapUpstreamError(last.error, request.model);
        }
        yield batch;
        next = await iterator.next();
      }
    } catch (error) {
      failure = error;
      throw mapUpstreamError(error, request.model);
    } finally {
      await iterator.return?.().catch(() => {});
      lease.finish(failure ?? (signal.aborted ? new AbortedError() : null));
    }
  }

  async embed(model: string, inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }> {
    const route = this.route(model);
    const { value, lease } = await this.acquire(route, signal, Infinity, (deployment) => deployment.target.embed(inputs, signal));
    lease.finish(null);
    return value;
  }

  tokenize(model: string, text: string, addSpecial: boolean): number[] {
    return this.localEngine(model).tokenize(model, text, addSpecial);
  }

  detokenize(model: string, tokens: number[]): string {
    return this.localEngine(model).detokenize(model, tokens);
  }

  load(): Array<{ model: string; queued: number; busy: number }> {
    const entries = this.options.local?.load() ?? [];
    for (const route of this.routes.values()) {
      const busy = route.deployments.reduce((sum, deployment) => sum + (deployment.target.local ? 0 : deployment.outstanding), 0);
      if (route.deployments.every((deployment) => deployment.target.local)) continue;
      const entry = entries.find((candidate) => candidate.model === route.config.model);
      if (entry) entry.busy += busy;
      else entries.push({ model: route.config.model, queued: 0, busy });
    }
    return entries;
  }

  async close(): Promise<void> {
    for (const route of this.routes.values()) for (const deployment of route.deployments) deployment.target.close?.();
    await this.options.local?.close();
  }

  /** The routing state of a model's deployments (tests, diagnostics). */
  deploymentsOf(model: string): readonly Deployment[] {
    return this.route(model).deployments;
  }

  private route(model: string): Route {
    const route = this.routes.get(model);
    if (!route) throw modelNotFound(model);
    return route;
  }

  private localEngine(model: string): Engine {
    const route = this.route(model);
    if (!route.hasLocal || !this.options.local) {
      throw invalidRequest(`The model '${model}' is served by an upstream; its tokenizer is not available here.`, 'model', 'model_not_supported');
    }
    return this.options.local;
  }

  /**
   * Runs `start` on the model's deployments until one succeeds: each picked by `pickDeployment`, retried while its
   * failures are retryable (backoff, or the upstream's `retry-after` up to the cap), then the next. Throws the
   * client's view of the last failure, or `unavailable` when every circuit is open.
   */
  private async acquire<T>(route: Route, signal: AbortSignal, deadline: number, start: (deployment: Deployment) => Promise<T>): Promise<{ value: T; lease: Lease }> {
    const { routing } = route.config;
    const tried = new Set<Deployment>();
    let lastError: unknown = null;
    while (true) {
      if (signal.aborted) throw new AbortedError();
      const deployment = pickDeployment(
        route.deployments.filter((candidate) => !tried.has(candidate)),
        this.now(),
      );
      if (!deployment) {
        if (lastError !== null) throw mapUpstreamError(lastError, route.config.model);
        throw this.allOpen(route);
      }
      tried.add(deployment);
      for (let attempt = 0; ; attempt++) {
        const lease = this.lease(route, deployment);
        try {
          return { value: await start(deployment), lease };
        } catch (error) {
          lease.finish(error);
          if (error instanceof AbortedError || signal.aborted) throw error instanceof AbortedError ? error : new AbortedError();
          lastError = error;
          // A local deployment that is full or still loading hands over to the next one at once.
          if (error instanceof TokenmillError && deployment.target.local && (error.kind === 'overloaded' || error.kind === 'unavailable')) break;
          if (!(error instanceof UpstreamError) || !error.retryable) throw mapUpstreamError(error, route.config.model);
          if (attempt >= routing.retries || !deployment.breaker.canTake(this.now())) break;
          const delay = error.retryAfterMs ?? backoffMs(routing.backoff_ms, attempt);
          if (delay > routing.max_retry_after_ms || this.now() + delay >= deadline) break;
          await this.sleep(delay, signal);
        }
      }
    }
  }

  /** Counts the request on the deployment until it finishes, and tells its breaker and the metrics how it went. */
  private lease(route: Route, deployment: Deployment): Lease {
    deployment.breaker.take(this.now());
    deployment.outstanding++;
    let finished = false;
    return {
      deployment,
      finish: (error: unknown) => {
        if (finished) return;
        finished = true;
        deployment.outstanding--;
        let outcome: AttemptOutcome;
        if (error === null) {
          deployment.breaker.succeed();
          outcome = 'success';
        } else if (error instanceof UpstreamError && error.retryable) {
          deployment.breaker.fail(this.now());
          outcome = 'failure';
        } else if (error instanceof UpstreamError) {
          // The upstream answered (it is up), refusing this request.
          deployment.breaker.succeed();
          outcome = 'rejected';
        } else {
          deployment.breaker.release();
          outcome = error instanceof AbortedError ? 'cancelled' : 'rejected';
        }
        this.options.onAttempt?.(route.config.model, deployment.target.name, outcome);
      },
    };
  }

  private allOpen(route: Route): TokenmillError {
    const now = this.now();
    const waitMs = Math.min(...route.deployments.map((deployment) => deployment.breaker.waitMs(now)));
    return new TokenmillError('unavailable', 'no_healthy_deployment', `Every deployment of '${route.config.model}' is failing; retry later.`, {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    });
  }
}

/** Exponential backoff with jitter: `base` x 2^attempt, times 0.5..1. */
function backoffMs(base: number, attempt: number): number {
  return Math.round(base * 2 ** attempt * (0.5 + Math.random() / 2));
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new AbortedError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

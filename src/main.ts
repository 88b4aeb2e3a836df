import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { TokenmillConfig } from './config/schema.js';
import { AccountService } from './core/accounts/account-service.js';
import { KeyCache } from './core/accounts/key-cache.js';
import { Authenticator } from './core/accounts/authenticator.js';
import { bootstrapAccounts, type BootstrapSecrets } from './core/accounts/bootstrap.js';
import { toModelPrices, type ModelPrices } from './core/billing/prices.js';
import { modelNotFound } from './core/errors.js';
import { RequestGate } from './core/metering/request-gate.js';
import { createRateLimiter } from './core/ratelimit/create-rate-limiter.js';
import type { RateLimiter } from './core/ratelimit/rate-limiter.js';
import { ServingMetrics } from './core/metrics/serving-metrics.js';
import { BatchService } from './core/batches/batch-service.js';
import { BatchWorker } from './core/batches/batch-worker.js';
import { FileService } from './core/files/file-service.js';
import { batchLineRunner } from './http/batches/run-batch-line.js';
import type { Engine } from './engine/engine.js';
import { LlamaEngine } from './engine/llama/llama-engine.js';
import { localModelConfigs, modelDeployments } from './config/model-deployments.js';
import { localTarget, upstreamTarget } from './core/routing/deployment.js';
import { RoutingEngine, type RoutingEngineOptions } from './core/routing/routing-engine.js';
import { createUpstream } from './upstream/create-upstream.js';
import { createApp, type AppDependencies, type AuthServices } from './http/app.js';
import { RequestLifecycle } from './http/request-lifecycle.js';
import { openStore } from './store/database.js';
import type { Store } from './store/store.js';

export interface RunningServer {
  app: FastifyInstance;
  /** Every catalog model: local llama.cpp deployments and upstreams, behind one router. */
  engine: RoutingEngine;
  /** The store (SQLite or PostgreSQL); it holds files and batches also when auth is disabled. */
  store: Store | null;
  /** Runs batch lines in the background. */
  batchWorker: BatchWorker;
  /** The bound address, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Secrets created by this start (the first start of a data directory); shown once. */
  secrets: BootstrapSecrets;
  /** Graceful shutdown: refuse new work, let in-flight requests finish within the grace period, then abort them. */
  shutdown(): Promise<void>;
}

/** Re-reading `last_used_at` more often than this is not worth a write per request. */
const TOUCH_INTERVAL_SECONDS = 60;
/** Keys whose last touch is remembered; past it the memory starts over (at worst one extra write per key). */
const TOUCHED_KEYS_KEPT = 10_000;

/**
 * The composition root: config -> store, limiter, engine -> app -> listen. The server listens before the models are
 * loaded, so `/health` answers at once and `/ready` says when the models are in.
 */
export async function startServer(config: TokenmillConfig): Promise<RunningServer> {
  const lifecycle = new RequestLifecycle();
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  // The server is its SQLite database's only user (a second server on the same data directory refuses to start).
  const store = await openStore({ databaseUrl: config.storage.database_url, dataDir: config.storage.data_dir, exclusive: true });
  let services;
  try {
    await store.migrate();
    services = config.auth.enabled ? await openAuthServices(config, store, nowSeconds) : null;
  } catch (error) {
    await store.close();
    throw error;
  }
  let batchWorker: BatchWorker | null = null;
  const batches = new BatchService(store, config.batches.window_seconds, nowSeconds, () => batchWorker?.kick());
  let engineLog: ((level: 'warn' | 'error', message: string) => void) | undefined;
  const engine = buildEngine(config, {
    log: (level, message) => engineLog?.(level, message),
    onAttempt: (model, deployment, outcome) => metrics.recordUpstreamAttempt(model, deployment, outcome),
  });
  const metrics = new ServingMetrics(() => engine.load());
  const deps: AppDependencies = {
    config,
    engine,
    auth: services?.auth ?? null,
    lifecycle,
    metrics,
    files: new FileService(store, config.files.max_bytes, nowSeconds),
    batches,
    now: Date.now,
    logger: {
      level: config.server.log_level,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
    },
  };
  const app = createApp(deps);
  engineLog = (level, message) => app.log[level]({ source: 'llama.cpp' }, message);
  const closeServices = async () => {
    await services?.limiter.close();
    await store.close();
  };
  let address: string;
  try {
    address = await app.listen({ host: config.server.host, port: config.server.port });
    await engine.start();
  } catch (error) {
    await app.close();
    await closeServices();
    throw error;
  }
  const worker = newBatchWorker(config, store, engine, lifecycle, batchLineRunner(deps), (level, object, message) => app.log[level](object, message));
  batchWorker = worker;
  worker.start();
  app.log.info({ url: address, models: engine.models().map((model) => model.id) }, 'Tokenmill is ready');

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      lifecycle.closing = true;
      // Batch lines stop at once and go back to pending, for the next start (or another instance) to run.
      const workerStopped = worker.stop();
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
      await workerStopped;
      await engine.close();
      await closeServices();
    })();
    return shuttingDown;
  };
  const secrets = services?.secrets ?? { adminKey: null, demoKey: null, demoAccountId: null };
  return { app, engine, store, batchWorker: worker, url: address, secrets, shutdown };
}


/** How long after the last interactive request batch work stays throttled, ms. */
const INTERACTIVE_QUIET_MS = 1000;

function newBatchWorker(
  config: TokenmillConfig,
  store: Store,
  engine: Engine,
  lifecycle: RequestLifecycle,
  run: ReturnType<typeof batchLineRunner>,
  log: (level: 'warn' | 'error', object: object, message: string) => void,
): BatchWorker {
  // Lines may target any model and are claimed before their model is known: size for the largest model.
  const sequences = Math.max(...config.models.map((model) => model.sequences ?? 0), 1);
  const discount = Math.round(config.batches.discount * 1_000_000);
  return new BatchWorker({
    store,
    run,
    // Every sequence busy, and as many lines again waiting at batch priority: lines of one size end together, and
    // a full wave in the queue refills the sequences at once (measured: a queue of 2 reached 84% of peak tok/s, a
    // full wave 95%). Interactive requests go ahead of waiting lines and preempt running ones (slot scheduler).
    // Engine work counts interactive requests and this worker's lines; its own lines count before the engine sees them.
    // While interactive requests run (or ran within the last second), only `lines_beside_interactive` lines do:
    // each batch sequence in a decode step slows the interactive ones (their TTFT p99 is the goal, issue 6).
    capacity: (running) => {
      if (lifecycle.busyWithin(INTERACTIVE_QUIET_MS)) return config.batches.lines_beside_interactive - running;
      const load = engine.load().reduce((total, model) => total + model.busy + model.queued, 0);
      return 2 * sequences - Math.max(running, load);
    },
    concurrency: config.batches.concurrency,
    pollIntervalMs: config.batches.poll_interval_ms,
    leaseMs: config.batches.lease_ms,
    multiplier: [discount, 1_000_000],
    billed: config.auth.enabled,
    now: Date.now,
    log,
  });
}

/**
 * The router over every catalog model's deployments: one LlamaEngine for the local ones (null when there are
 * none), one client per upstream deployment.
 */
function buildEngine(
  config: TokenmillConfig,
  hooks: { log: (level: 'warn' | 'error', message: string) => void; onAttempt: NonNullable<RoutingEngineOptions['onAttempt']> },
): RoutingEngine {
  const localModels = localModelConfigs(config.models);
  const local =
    localModels.length > 0
      ? new LlamaEngine({ models: localModels, log: hooks.log, promptCacheDirectory: join(config.storage.data_dir, 'prompt-cache') })
      : null;
  return new RoutingEngine({
    local,
    onAttempt: hooks.onAttempt,
    routes: config.models.map((model) => ({
      model: model.id,
      contextSize: model.context_size ?? 8192,
      tokenizer: model.tokenizer,
      routing: model.routing,
      deployments: modelDeployments(model).map((deployment) => ({
        weight: deployment.weight,
        target: deployment.kind === 'llama' ? localTarget(local!, model.id) : upstreamTarget(createUpstream(deployment, Date.now, { contextSize: model.context_size ?? 8192 })),
      })),
    })),
  });
}

async function openAuthServices(
  config: TokenmillConfig,
  store: Store,
  nowSeconds: () => number,
): Promise<{ auth: AuthServices; store: Store; limiter: RateLimiter; secrets: BootstrapSecrets }> {
  const limiter = createRateLimiter({ redisUrl: config.storage.redis_url });
  const keyCache = new KeyCache(config.auth.key_cache_ttl_ms, Date.now);
  const accounts = new AccountService(store, nowSeconds, keyCache);
  const secrets = await bootstrapAccounts(store, accounts, config.auth);
  // Holds older than the longest a request may run were left by a crashed process.
  await store.releaseStale(nowSeconds() - Math.ceil(config.server.request_timeout_ms / 1000) - 60);
  const authenticator = new Authenticator(store, nowSeconds, keyCache);
  await authenticator.load();
  const prices = new Map<string, ModelPrices>(config.models.map((model) => [model.id, toModelPrices(model.prices)]));
  const gate = new RequestGate({
    store,
    limiter,
    prices: (model) => {
      const found = prices.get(model);
      if (!found) throw modelNotFound(model);
      return found;
    },
    defaultKeyLimits: {
      rpm: config.auth.default_key_limits.rpm,
      tpm: config.auth.default_key_limits.tpm,
      maxConcurrency: config.auth.default_key_limits.max_concurrency,
    },
    now: Date.now,
  });
  /** When this process last wrote each key's last_used_at, unix seconds. */
  const touched = new Map<string, number>();
  const auth: AuthServices = {
    authenticator,
    gate,
    accounts,
    touchKey(keyId, lastUsedAt) {
      const now = nowSeconds();
      // A cached key's lastUsedAt is as old as the cache entry: this process's own touches count too.
      const last = Math.max(lastUsedAt ?? -Infinity, touched.get(keyId) ?? -Infinity);
      if (now - last < TOUCH_INTERVAL_SECONDS) return;
      if (touched.size >= TOUCHED_KEYS_KEPT) touched.clear();
      touched.set(keyId, now);
      void store.touchKey(keyId, now).catch(() => {});
    },
  };
  return { auth, store, limiter, secrets };
}

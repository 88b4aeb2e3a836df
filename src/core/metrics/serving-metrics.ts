import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChoiceEvent } from '../inference/run-choices.js';

/** Per-model load, read when /metrics is scraped. */
export type LoadSource = () => Array<{ model: string; queued: number; busy: number }>;

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80];

/**
 * Prometheus metrics of the serving path, named as vLLM names them (`vllm:x` -> `tokenmill_x`), each labelled with
 * `model`. One registry per app (no global state), exposed at GET /metrics.
 */
export class ServingMetrics {
  readonly registry = new Registry();
  private readonly requestSuccess: Counter<'model' | 'finished_reason'>;
  private readonly promptTokens: Counter<'model'>;
  private readonly generationTokens: Counter<'model'>;
  private readonly prefixCacheQueries: Counter<'model'>;
  private readonly prefixCacheHits: Counter<'model'>;
  private readonly timeToFirstToken: Histogram<'model'>;
  private readonly interTokenLatency: Histogram<'model'>;
  private readonly e2eLatency: Histogram<'model'>;
  private readonly upstreamAttempts: Counter<'model' | 'deployment' | 'outcome'>;
  /**
   * Each model's labelled children, made once: prom-client hashes a label object on every `observe({ model }, ...)`
   * and `inc({ model }, ...)` (about 15 us per request over the six calls, on the 2-vCPU VM).
   */
  private readonly perModel = new Map<string, ModelInstruments>();

  constructor(load: LoadSource) {
    const registers = [this.registry];
    this.requestSuccess = new Counter({ name: 'tokenmill_request_success_total', help: 'Finished requests, by finish reason.', labelNames: ['model', 'finished_reason'], registers });
    this.promptTokens = new Counter({ name: 'tokenmill_prompt_tokens_total', help: 'Prompt tokens processed (cached ones included).', labelNames: ['model'], registers });
    this.generationTokens = new Counter({ name: 'tokenmill_generation_tokens_total', help: 'Tokens generated.', labelNames: ['model'], registers });
    this.prefixCacheQueries = new Counter({ name: 'tokenmill_prefix_cache_queries_total', help: 'Prompt tokens looked up in the prefix cache.', labelNames: ['model'], registers });
    this.prefixCacheHits = new Counter({ name: 'tokenmill_prefix_cache_hits_total', help: 'Prompt tokens served from the prefix cache (not recomputed).', labelNames: ['model'], registers });
    this.timeToFirstToken = new Histogram({ name: 'tokenmill_time_to_first_token_seconds', help: 'Arrival to the first generated token.', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.interTokenLatency = new Histogram({ name: 'tokenmill_inter_token_latency_seconds', help: 'Gap between generated outputs of one choice.', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.e2eLatency = new Histogram({ name: 'tokenmill_e2e_request_latency_seconds', help: 'Arrival to the end of the request.', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.upstreamAttempts = new Counter({
      name: 'tokenmill_deployment_attempts_total',
      help: 'Attempts on a deployment (local or upstream), by outcome: success, failure (retryable), rejected, cancelled.',
      labelNames: ['model', 'deployment', 'outcome'],
      registers,
    });
    new Gauge({
      name: 'tokenmill_num_requests_running',
      help: 'Requests holding a sequence.',
      labelNames: ['model'],
      registers,
      collect() {
        for (const entry of load()) this.set({ model: entry.model }, entry.busy);
      },
    });
    new Gauge({
      name: 'tokenmill_num_requests_waiting',
      help: 'Requests waiting in the queue for a sequence.',
      labelNames: ['model'],
      registers,
      collect() {
        for (const entry of load()) this.set({ model: entry.model }, entry.queued);
      },
    });
  }

  /** Starts watching one request (arrived at `arrivedAt`, a performance.now() time). */
  watch(model: string, arrivedAt: number): RequestObserver {
    return new RequestObserver(this, model, arrivedAt);
  }

  /** @internal */
  recordEvent(model: string, event: ChoiceEvent, sinceArrival: number, sinceLast: number | null): void {
    switch (event.type) {
      case 'text-delta':
      case 'tool-call-delta': {
        const instruments = this.instruments(model);
        if (sinceLast === null) instruments.timeToFirstToken.observe(sinceArrival / 1000);
        else instruments.interTokenLatency.observe(sinceLast / 1000);
        break;
      }
      case 'end': {
        const instruments = this.instruments(model);
        instruments.promptTokens.inc(event.usage.promptTokens);
        instruments.generationTokens.inc(event.usage.completionTokens);
        instruments.prefixCacheQueries.inc(event.usage.promptTokens);
        instruments.prefixCacheHits.inc(event.usage.cachedTokens);
        let success = instruments.requestSuccess.get(event.finishReason);
        if (success === undefined) {
          success = this.requestSuccess.labels({ model, finished_reason: event.finishReason });
          instruments.requestSuccess.set(event.finishReason, success);
        }
        success.inc();
        break;
      }
      default:
        break;
    }
  }

  /** One attempt of the router on a deployment (`deployment` is its name: kind, base URL and model; never a key). */
  recordUpstreamAttempt(model: string, deployment: string, outcome: string): void {
    this.upstreamAttempts.inc({ model, deployment, outcome });
  }

  /** @internal */
  recordEnd(model: string, sinceArrival: number): void {
    this.instruments(model).e2eLatency.observe(sinceArrival / 1000);
  }

  private instruments(model: string): ModelInstruments {
    let instruments = this.perModel.get(model);
    if (instruments === undefined) {
      const labels = { model };
      instruments = {
        promptTokens: this.promptTokens.labels(labels),
        generationTokens: this.generationTokens.labels(labels),
        prefixCacheQueries: this.prefixCacheQueries.labels(labels),
        prefixCacheHits: this.prefixCacheHits.labels(labels),
        timeToFirstToken: this.timeToFirstToken.labels(labels),
        interTokenLatency: this.interTokenLatency.labels(labels),
        e2eLatency: this.e2eLatency.labels(labels),
        requestSuccess: new Map(),
      };
      this.perModel.set(model, instruments);
    }
    return instruments;
  }
}

interface ModelInstruments {
  promptTokens: { inc(value?: number): void };
  generationTokens: { inc(value?: number): void };
  prefixCacheQueries: { inc(value?: number): void };
  prefixCacheHits: { inc(value?: number): void };
  timeToFirstToken: { observe(value: number): void };
  interTokenLatency: { observe(value: number): void };
  e2eLatency: { observe(value: number): void };
  /** By finish reason. */
  requestSuccess: Map<string, { inc(value?: number): void }>;
}

/**
 * Feeds one request's events into the metrics. Token timings are observed as the tokens come; the counters of the
 * `end` events (tokens, successes) are updated at `end()`, which the server calls once the answer is written: they
 * carry no timing, and the answer need not wait for them.
 */
export class RequestObserver {
  private readonly lastOutput = new Map<number, number>();
  private readonly ends: ChoiceEvent[] = [];

  constructor(
    private readonly metrics: ServingMetrics,
    private readonly model: string,
    private readonly arrivedAt: number,
  ) {}

  observe(event: ChoiceEvent): void {
    if (event.type === 'end') {
      this.ends.push(event);
      return;
    }
    const now = performance.now();
    const last = this.lastOutput.get(event.index);
    if (event.type === 'text-delta' || event.type === 'tool-call-delta') this.lastOutput.set(event.index, now);
    this.metrics.recordEvent(this.model, event, now - this.arrivedAt, last === undefined ? null : now - last);
  }

  end(): void {
    const sinceArrival = performance.now() - this.arrivedAt;
    for (const event of this.ends) this.metrics.recordEvent(this.model, event, sinceArrival, null);
    this.metrics.recordEnd(this.model, sinceArrival);
  }
}

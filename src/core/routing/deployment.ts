import type { Engine, EngineEvent, GenerateRequest, Prompt } from '../../engine/engine.js';
import type { Upstream } from '../../upstream/upstream.js';
import { CircuitBreaker } from './circuit-breaker.js';

/** One place a model runs: the local engine, or an upstream over HTTP. */
export interface DeploymentTarget {
  /** For logs and metrics: `llama <model>` or the upstream's name. */
  readonly name: string;
  readonly local: boolean;
  /** Batches of events, as `Engine.generate`. */
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent[]>;
  embed(inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }>;
  countPromptTokens(prompt: Prompt): Promise<number>;
  /** Frees what the target holds (an upstream's idle connections); the local engine is closed by the router. */
  close?(): void;
}

/** A deployment with its routing state: weight, requests in flight, circuit breaker, and its smooth-weighted-round-robin credit. */
export class Deployment {
  /** Requests sent and not yet finished. */
  outstanding = 0;
  /** Smooth weighted round robin credit (nginx's `current_weight`), used to break ties between equally loaded deployments. */
  credit = 0;
  readonly breaker: CircuitBreaker;

  constructor(
    readonly target: DeploymentTarget,
    /** Share of traffic, relative to the model's other deployments. */
    readonly weight: number,
    breaker: { failures: number; cooldownMs: number },
  ) {
    this.breaker = new CircuitBreaker(breaker.failures, breaker.cooldownMs);
  }
}

/** The local engine's model as a deployment. */
export function localTarget(engine: Engine, model: string): DeploymentTarget {
  return {
    name: `llama ${model}`,
    local: true,
    generate: (request, signal) => engine.generate({ ...request, model }, signal),
    embed: (inputs, signal) => engine.embed(model, inputs, signal),
    countPromptTokens: (prompt) => engine.countPromptTokens(model, prompt),
  };
}

/** An upstream as a deployment. */
export function upstreamTarget(upstream: Upstream): DeploymentTarget {
  return {
    name: upstream.name,
    local: false,
    generate: (request, signal) => upstream.generate(request, signal),
    embed: (inputs, signal) => upstream.embed(inputs, signal),
    countPromptTokens: async (prompt) => upstream.countPromptTokens(prompt),
    close: () => upstream.close(),
  };
}

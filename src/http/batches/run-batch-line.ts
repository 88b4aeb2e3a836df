import type { Principal } from '../../core/accounts/authenticator.js';
import { TokenmillError } from '../../core/errors.js';
import type { BatchLineRequest, BatchLineRunner } from '../../core/batches/batch-line-runner.js';
import type { InferenceRequest, TranslateContext } from '../../core/inference/inference-request.js';
import { planAdmission } from '../../core/inference/plan-admission.js';
import { runChoices, type ChoiceEvent } from '../../core/inference/run-choices.js';
import type { Ticket } from '../../core/metering/request-gate.js';
import { UsageMeter } from '../../core/metering/usage-meter.js';
import { translateChatRequest } from '../../core/translate/openai-chat.js';
import { translateCompletionRequest } from '../../core/translate/openai-completion.js';
import { chatCompletionRequestSchema } from '../../protocol/openai/chat-completions.js';
import { completionRequestSchema } from '../../protocol/openai/completions.js';
import { embeddingRequestSchema, type EmbeddingList } from '../../protocol/openai/embeddings.js';
import { encodeEmbeddings } from '../encoders/openai-embeddings.js';
import type { AppDependencies } from '../app.js';
import { requireModelAccess } from '../authenticate.js';
import { ChatCompletionCollector } from '../encoders/openai-chat.js';
import { CompletionCollector } from '../encoders/openai-completion.js';
import { mapError } from '../errors.js';
import { parseBody } from '../parse-body.js';

/** Batch lines wait behind interactive requests (priority 0) in the engine's queue. */
export const BATCH_PRIORITY = 10;

/** Errors after which a line runs again later instead of failing: no room now, or shutting down. */
const RETRYABLE = new Set(['overloaded', 'rate_limit', 'unavailable']);

type Collector = { add(event: ChoiceEvent): void; result(): unknown };

/**
 * Runs batch lines as the routes run requests: the same schemas, model access check, translators, admission (with
 * the batch id and discount), engine (at batch priority, never streamed) and encoders. Errors become the line's
 * status code and OpenAI error body, as the HTTP API would have answered.
 */
export function batchLineRunner(deps: AppDependencies): BatchLineRunner {
  return async (request) => {
    const { principal } = request;
    if (principal instanceof TokenmillError) {
      const mapped = mapError(principal, request.requestId);
      return { statusCode: mapped.status, body: mapped.body, ticket: null, outcome: null, retryAfterMs: null };
    }
    const line = { ...request, principal };
    const arrivedAt = performance.now();
    const state: { ticket: Ticket | null; meter: UsageMeter | null } = { ticket: null, meter: null };
    try {
      const body = line.endpoint === '/v1/embeddings' ? await embed(deps, line, state, arrivedAt) : await generate(deps, line, state, arrivedAt);
      return { statusCode: 200, body, ticket: state.ticket, outcome: state.meter?.outcome(null, false) ?? null, retryAfterMs: null };
    } catch (error) {
      const mapped = mapError(error, line.requestId);
      const retryable = error instanceof TokenmillError && RETRYABLE.has(error.kind);
      return {
        statusCode: mapped.status,
        body: mapped.body,
        ticket: state.ticket,
        outcome: state.meter?.outcome(error, line.signal.aborted) ?? null,
        retryAfterMs: retryable ? Math.max(100, ((error as TokenmillError).retryAfterSeconds ?? 1) * 1000) : null,
      };
    }
  };
}

type RunnableLine = BatchLineRequest & { principal: Principal };

function context(deps: AppDependencies, line: RunnableLine): TranslateContext {
  return {
    now: deps.now(),
    requestTimeoutMs: deps.config.server.request_timeout_ms,
    cacheScope: line.principal.kind === 'key' ? line.principal.account.id : null,
  };
}

async function generate(deps: AppDependencies, line: RunnableLine, state: { ticket: Ticket | null; meter: UsageMeter | null }, arrivedAt: number): Promise<unknown> {
  let inference: InferenceRequest;
  let collector: Collector;
  const created = Math.floor(deps.now() / 1000);
  if (line.endpoint === '/v1/chat/completions') {
    const wire = parseBody(chatCompletionRequestSchema, line.body);
    requireModelAccess(deps, line.principal, wire.model);
    inference = translateChatRequest(wire, context(deps, line));
    collector = new ChatCompletionCollector({ id: `chatcmpl-${line.requestId}`, created, model: wire.model }, inference.n, inference.n, inference.generation.logprobs !== null);
  } else {
    const wire = parseBody(completionRequestSchema, line.body);
    requireModelAccess(deps, line.principal, wire.model);
    inference = translateCompletionRequest(wire, context(deps, line));
    const choices = inference.prompts.length * inference.n;
    collector = new CompletionCollector({ id: `cmpl-${line.requestId}`, created, model: wire.model }, choices, inference.n, inference.generation.logprobs !== null);
  }
  inference = { ...inference, stream: false, generation: { ...inference.generation, priority: BATCH_PRIORITY } };
  if (deps.auth && line.principal.kind === 'key') {
    const plan = await planAdmission(deps.engine, inference);
    state.ticket = await deps.auth.gate.admit(line.principal, {
      requestId: line.requestId,
      model: inference.model,
      endpoint: line.endpoint,
      ...plan,
      batchId: line.batchId,
      multiplier: line.multiplier,
    });
  }
  const meter = new UsageMeter(inference.n, arrivedAt);
  state.meter = meter;
  for await (const batch of runChoices(deps.engine, inference, line.signal)) {
    for (const event of batch) {
      meter.observe(event);
      collector.add(event);
    }
  }
  return collector.result();
}

async function embed(deps: AppDependencies, line: RunnableLine, state: { ticket: Ticket | null; meter: UsageMeter | null }, arrivedAt: number): Promise<EmbeddingList> {
  const wire = parseBody(embeddingRequestSchema, line.body);
  requireModelAccess(deps, line.principal, wire.model);
  if (wire.dimensions !== null && wire.dimensions !== undefined) {
    throw new TokenmillError('invalid_request', 'unsupported_parameter', 'dimensions is not supported by this model.', { param: 'dimensions' });
  }
  const inputs: Array<string | number[]> =
    typeof wire.input === 'string' ? [wire.input] : typeof wire.input[0] === 'number' ? [wire.input as number[]] : (wire.input as Array<string | number[]>);
  if (deps.auth && line.principal.kind === 'key') {
    let promptTokens = 0;
    for (const input of inputs) promptTokens += typeof input === 'string' ? await deps.engine.countPromptTokens(wire.model, { kind: 'text', text: input }) : input.length;
    state.ticket = await deps.auth.gate.admit(line.principal, {
      requestId: line.requestId,
      model: wire.model,
      endpoint: line.endpoint,
      promptTokens,
      maxCompletionTokens: 0,
      batchId: line.batchId,
      multiplier: line.multiplier,
    });
  }
  const meter = new UsageMeter(1, arrivedAt);
  state.meter = meter;
  const { vectors, promptTokens } = await deps.engine.embed(wire.model, inputs, line.signal);
  // The meter bills what an `end` event reports; embeddings have one count.
  meter.observe({ type: 'end', index: 0, finishReason: 'stop', usage: { promptTokens, cachedTokens: 0, completionTokens: 0 } });
  return encodeEmbeddings(vectors, wire.model, promptTokens, wire.encoding_format);
}

/**
 * The "structured output" scenario: does constrained decoding slow down the unconstrained requests that share the
 * model? Unconstrained streams (ignore_eos, fixed length) are measured in three phases:
 *   alone                 - only them;
 *   + unconstrained load  - beside `background` clients sending plain requests (the control: a fuller batch);
 *   + constrained load    - beside `background` clients sending json_schema requests of about the same length.
 * The grammar's cost to its neighbours is the gap between the last two phases; the gap between the first two is what
 * any extra load costs. The constrained clients' own throughput is reported too.
 */
import { runLoad, summarizeLoad, type LoadSummary } from '../load-generator.js';
import { uniquePromptText } from '../prompts.js';

export interface StructuredOutputOptions {
  /** Server origin, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  modelId: string;
  /** Measured unconstrained streams at once. */
  foreground: number;
  /** Requests per measured phase (spread over the foreground clients). */
  requests: number;
  /** Times the two loaded phases are measured, alternating their order (default 1). */
  rounds?: number;
  /** Clients sending the other load, back to back, while a phase is measured. */
  background: number;
  /** Output tokens per measured request (ignore_eos) and the most per background request. */
  maxTokens: number;
  temperature: number;
  /** Deadline of each request, ms. */
  timeoutMs: number;
  log: (line: string) => void;
}

export interface BackgroundSummary {
  requests: number;
  errors: number;
  completionTokens: number;
  /** Completion tokens of the background requests / the phase's wall time. */
  outputTokensPerSecond: number;
}

export interface StructuredOutputPhase {
  name: 'alone' | 'with unconstrained load' | 'with constrained load';
  foreground: LoadSummary;
  background: BackgroundSummary | null;
}

export interface StructuredOutputResult {
  phases: StructuredOutputPhase[];
  /**
   * Foreground tokens/s with constrained load / with unconstrained load, summed over the rounds (1 = the grammar
   * costs its neighbours nothing).
   */
  constrainedVsControl: number;
}

/**
 * A schema whose output runs about as long as `maxTokens`: a list of records with short strings, bounded numbers
 * and enums, so every token of it is constrained.
 */
export const BENCH_SCHEMA = {
  type: 'object',
  properties: {
    people: {
      type: 'array',
      minItems: 40,
      maxItems: 40,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', maxLength: 12 },
          age: { type: 'integer', minimum: 0, maximum: 120 },
          role: { type: 'string', enum: ['admin', 'editor', 'viewer'] },
          active: { type: 'boolean' },
        },
        required: ['name', 'age', 'role', 'active'],
        additionalProperties: false,
      },
    },
  },
  required: ['people'],
  additionalProperties: false,
} as const;

export async function runStructuredOutputScenario(options: StructuredOutputOptions): Promise<StructuredOutputResult> {
  const phases: StructuredOutputPhase[] = [];
  // Alone once, then the two loaded phases alternated over `rounds` (plain first, then constrained first, ...), so
  // that the machine's drift hits both alike.
  const order: StructuredOutputPhase['name'][] = ['alone'];
  for (let round = 0; round < (options.rounds ?? 1); round++) {
    order.push(...(round % 2 === 0 ? (['with unconstrained load', 'with constrained load'] as const) : (['with constrained load', 'with unconstrained load'] as const)));
  }
  for (const name of order) {
    const background = name === 'alone' ? null : startBackground(options, name === 'with constrained load');
    try {
      const result = await runLoad({
        baseUrl: options.baseUrl,
        path: '/v1/chat/completions',
        concurrency: options.foreground,
        requests: options.requests,
        timeoutMs: options.timeoutMs,
        body: () => ({
          model: options.modelId,
          messages: [{ role: 'user', content: uniquePromptText(20) }],
          max_tokens: options.maxTokens,
          temperature: options.temperature,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      const foreground = summarizeLoad(result);
      const summary = background === null ? null : await background.stop(result.wallMs);
      phases.push({ name, foreground, background: summary });
      options.log(
        `${name}: ${foreground.outputTokensPerSecond.toFixed(0)} tok/s unconstrained` +
          (summary ? `, ${summary.outputTokensPerSecond.toFixed(0)} tok/s background` : ''),
      );
    } catch (error) {
      await background?.stop(1);
      throw error;
    }
  }
  const total = (name: StructuredOutputPhase['name']) =>
    phases.filter((phase) => phase.name === name).reduce((sum, phase) => sum + phase.foreground.outputTokensPerSecond, 0);
  return { phases, constrainedVsControl: total('with constrained load') / total('with unconstrained load') };
}

interface Background {
  /** Stops sending, waits for requests in flight, and sums what completed; `wallMs`: the measured phase. */
  stop(wallMs: number): Promise<BackgroundSummary>;
}

/** `clients` loops of non-streaming requests, constrained by BENCH_SCHEMA or plain, until stopped. */
function startBackground(options: StructuredOutputOptions, constrained: boolean): Background {
  let running = true;
  const totals = { requests: 0, errors: 0, completionTokens: 0 };
  const client = async (): Promise<void> => {
    while (running) {
      try {
        const response = await fetch(`${options.baseUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(options.timeoutMs),
          body: JSON.stringify({
            model: options.modelId,
            messages: [{ role: 'user', content: uniquePromptText(20) }],
            max_tokens: options.maxTokens,
            temperature: options.temperature,
            ...(constrained
              ? { response_format: { type: 'json_schema', json_schema: { name: 'people', schema: BENCH_SCHEMA } } }
              : { ignore_eos: true }),
          }),
        });
        const body = (await response.json()) as { usage?: { completion_tokens: number } };
        if (!response.ok || !body.usage) throw new Error(`HTTP ${response.status}`);
        if (running) {
          totals.requests++;
          totals.completionTokens += body.usage.completion_tokens;
        }
      } catch {
        totals.errors++;
      }
    }
  };
  const clients = Array.from({ length: options.background }, client);
  return {
    async stop(wallMs) {
      running = false;
      await Promise.all(clients);
      return { ...totals, outputTokensPerSecond: totals.completionTokens / (wallMs / 1000) };
    },
  };
}

import type { Engine } from '../../engine/engine.js';
import type { InferenceRequest } from './inference-request.js';

/** Token counts the gate reserves for: every prompt, and the most every choice may generate. */
export interface AdmissionPlan {
  promptTokens: number;
  maxCompletionTokens: number;
}

/**
 * Counts a request's prompts with the model's tokenizer and bounds its output: `max_tokens` per choice, or what is
 * left of the context when it is unset. Prompts that do not fit are left for the engine to refuse.
 */
export async function planAdmission(engine: Engine, request: InferenceRequest): Promise<AdmissionPlan> {
  const contextSize = engine.models().find((model) => model.id === request.model)?.contextSize ?? 0;
  let promptTokens = 0;
  let maxCompletionTokens = 0;
  for (const prompt of request.prompts) {
    const tokens = await engine.countPromptTokens(request.model, prompt);
    promptTokens += tokens;
    const perChoice = request.generation.maxTokens ?? Math.max(0, contextSize - tokens);
    maxCompletionTokens += perChoice * request.n;
  }
  return { promptTokens, maxCompletionTokens };
}

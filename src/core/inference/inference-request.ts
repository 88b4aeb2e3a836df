import type { GenerateRequest, Prompt } from '../../engine/engine.js';

/**
 * One API request resolved into engine work: every default filled in, every limit checked.
 * Choice `index` = promptIndex * n + choiceIndex, as OpenAI numbers the choices of a multi-prompt completion.
 */
export interface InferenceRequest {
  model: string;
  prompts: Prompt[];
  /** Choices per prompt. */
  n: number;
  /** The generation parameters of every choice; `prompt` is replaced per prompt and `seed` offset per choice. */
  generation: Omit<GenerateRequest, 'prompt'>;
  stream: boolean;
  /** Send a final usage chunk in streams. */
  includeUsage: boolean;
}

/** What translators need besides the wire request. */
export interface TranslateContext {
  /** ms since epoch. */
  now: number;
  /** The server's deadline for a request, ms. */
  requestTimeoutMs: number;
  /** Prompt-cache scope of the caller (the account id; null without accounts). */
  cacheScope: string | null;
}

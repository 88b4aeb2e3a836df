import { z } from 'zod';
import { constraintFields, samplingFields } from './common.js';
import type { UsageWire } from './chat-completions.js';

const tokenArray = z.array(z.number().int());

export const completionRequestSchema = z.object({
  model: z.string().min(1),
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenArray.min(1), z.array(tokenArray.min(1)).min(1)]),
  ...samplingFields,
  ...constraintFields,
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  logprobs: z.number().int().min(0).max(5).nullish(),
  best_of: z.number().int().min(1).max(16).nullish(),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: number; text: string; logprobs: CompletionLogprobs | null; finish_reason: string | null }>;
  usage?: UsageWire | null;
}

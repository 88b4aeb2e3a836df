import { z } from 'zod';

/** A `stop` field: one string or up to 4. */
export const stopSchema = z.union([z.string(), z.array(z.string()).max(4, 'stop may hold at most 4 sequences')]).nullish();

/** Sampling fields shared by chat and completions (OpenAI's, then vLLM's and llama-server's extras). */
export const samplingFields = {
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(-1).max(100000).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, 'logit_bias keys must be token ids'), z.number().min(-100).max(100)).nullish(),
  seed: z.number().int().min(-(2 ** 63)).max(2 ** 64).nullish(),
  stop: stopSchema,
  max_tokens: z.number().int().min(1).max(1 << 24).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  user: z.string().max(512).nullish(),
  min_tokens: z.number().int().min(0).max(1 << 24).nullish(),
  ignore_eos: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
} as const;

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

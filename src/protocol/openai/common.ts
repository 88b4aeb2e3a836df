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
  /** vLLM's prompt-cache salt: prefixes are reused only between requests with the same salt. */
  cache_salt: z.string().min(1).max(256).nullish(),
} as const;

/** A JSON Schema as clients send it: a JSON object (checked further by the engine, which enforces it). */
export const jsonSchemaObject = z.record(z.string(), z.json());

/** `response_format`: free text, any JSON object, or JSON that validates against a schema (chat and completions). */
export const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'name must be 1 to 64 letters, digits, underscores or dashes'),
      description: z.string().nullish(),
      schema: jsonSchemaObject.nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

/**
 * Output constraints beyond OpenAI's: `grammar` (GBNF, as llama-server takes it), and vLLM's guided decoding
 * `guided_regex` (the whole output matches) and `guided_choice` (the output is one of the strings).
 */
export const constraintFields = {
  response_format: responseFormatSchema.nullish(),
  grammar: z.string().min(1, 'grammar must not be empty').max(1 << 20).nullish(),
  guided_regex: z.string().min(1, 'guided_regex must not be empty').max(1 << 16).nullish(),
  guided_choice: z.array(z.string().min(1, 'choices must not be empty')).min(1).max(1024).nullish(),
} as const;

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

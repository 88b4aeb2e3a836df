import { z } from 'zod';

/** llama-server's /tokenize and /detokenize. `model` defaults to the first model of the catalog. */
export const tokenizeRequestSchema = z.object({
  model: z.string().min(1).nullish(),
  content: z.string(),
  add_special: z.boolean().nullish(),
});

export const detokenizeRequestSchema = z.object({
  model: z.string().min(1).nullish(),
  tokens: z.array(z.number().int()),
});

export type TokenizeRequest = z.infer<typeof tokenizeRequestSchema>;
export type DetokenizeRequest = z.infer<typeof detokenizeRequestSchema>;

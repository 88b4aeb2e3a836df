import { z } from 'zod';
import { constraintFields, jsonSchemaObject, samplingFields } from './common.js';

const contentPartSchema = z.object({ type: z.string(), text: z.string().optional() });

const toolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPartSchema)]).nullish(),
  name: z.string().nullish(),
  tool_call_id: z.string().nullish(),
  tool_calls: z.array(toolCallSchema).nullish(),
});

const functionToolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names must be 1 to 64 letters, digits, underscores or dashes'),
    description: z.string().nullish(),
    parameters: jsonSchemaObject.nullish(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
]);

export const chatCompletionRequestSchema = z.object({
  model: z.string().min(1),
  messages: z.array(chatMessageSchema).min(1, 'messages must hold at least one message'),
  ...samplingFields,
  max_completion_tokens: z.number().int().min(1).max(1 << 24).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  ...constraintFields,
  tools: z.array(functionToolSchema).max(128).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
export type ChatMessageWire = z.infer<typeof chatMessageSchema>;

export interface ToolCallWire {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A streamed piece of a tool call: the first carries id, type and name; later ones more arguments. */
export interface ToolCallDeltaWire {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ChatLogprobs {
  content: Array<{
    token: string;
    logprob: number;
    bytes: number[];
    top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
  }>;
}

export interface UsageWire {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    /** content is null when the answer is only tool calls. */
    message: { role: 'assistant'; content: string | null; refusal: null; tool_calls?: ToolCallWire[] };
    logprobs: ChatLogprobs | null;
    finish_reason: string;
  }>;
  usage: UsageWire;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string; tool_calls?: ToolCallDeltaWire[] };
    logprobs: ChatLogprobs | null;
    finish_reason: string | null;
  }>;
  usage?: UsageWire | null;
}

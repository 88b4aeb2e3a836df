import { z } from 'zod';

/**
 * Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`): requests as zod schemas, responses
 * and stream events as types. No logic.
 */

/** A prompt-cache breakpoint; `ttl`: how long its prefix stays pinned (default 5 minutes). */
const cacheControlSchema = z.object({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).nullish() });

const textBlockSchema = z.object({
  type: z.literal('text'),
  text: z.string(),
  cache_control: cacheControlSchema.nullish(),
});

const toolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.json()),
  cache_control: cacheControlSchema.nullish(),
});

/**
 * Blocks of Anthropic's API that the engine cannot take (images, documents, thinking, server tools): parsed loosely,
 * so that the translator refuses them by name; an unknown block type is refused here.
 */
export const UNSUPPORTED_BLOCK_TYPES = [
  'image',
  'document',
  'search_result',
  'thinking',
  'redacted_thinking',
  'server_tool_use',
  'web_search_tool_result',
  'web_fetch_tool_result',
  'code_execution_tool_result',
  'mcp_tool_use',
  'mcp_tool_result',
  'container_upload',
] as const;

const unsupportedBlockSchema = z.looseObject({ type: z.enum(UNSUPPORTED_BLOCK_TYPES) });

const toolResultBlockSchema = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [textBlockSchema, unsupportedBlockSchema]))]).nullish(),
  is_error: z.boolean().nullish(),
  cache_control: cacheControlSchema.nullish(),
});

const contentBlockSchema = z.discriminatedUnion('type', [textBlockSchema, toolUseBlockSchema, toolResultBlockSchema, unsupportedBlockSchema]);

export const anthropicMessageSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(contentBlockSchema)]),
});

const toolSchema = z.object({
  /** Absent or 'custom': a client tool. Anthropic's server tools (web search, ...) have other types. */
  type: z.literal('custom').nullish(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'tool names must be 1 to 64 letters, digits, underscores or dashes'),
  description: z.string().nullish(),
  input_schema: z.looseObject({ type: z.literal('object') }),
  cache_control: cacheControlSchema.nullish(),
});

const parallelField = { disable_parallel_tool_use: z.boolean().nullish() };

const toolChoiceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), ...parallelField }),
  z.object({ type: z.literal('any'), ...parallelField }),
  z.object({ type: z.literal('tool'), name: z.string().min(1), ...parallelField }),
  z.object({ type: z.literal('none') }),
]);

/** The fields that shape the prompt, shared by messages and count_tokens. */
const promptFields = {
  model: z.string().min(1),
  messages: z.array(anthropicMessageSchema).min(1, 'messages must hold at least one message'),
  system: z.union([z.string(), z.array(textBlockSchema)]).nullish(),
  tools: z.array(toolSchema).max(128).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
} as const;

export const messagesRequestSchema = z.object({
  ...promptFields,
  /** Automatic caching: a breakpoint on the last block of the request. */
  cache_control: cacheControlSchema.nullish(),
  /** 0: only compute the prompt, to warm the prompt cache (no content). */
  max_tokens: z.number().int().min(0).max(1 << 24),
  stop_sequences: z.array(z.string().min(1, 'stop sequences must not be empty')).max(64).nullish(),
  temperature: z.number().min(0).max(1).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(0).max(100000).nullish(),
  metadata: z.object({ user_id: z.string().max(512).nullish() }).nullish(),
  stream: z.boolean().nullish(),
});

export const countTokensRequestSchema = z.object({ ...promptFields, cache_control: cacheControlSchema.nullish() });

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type CountTokensRequest = z.infer<typeof countTokensRequestSchema>;
export type AnthropicMessageWire = z.infer<typeof anthropicMessageSchema>;
export type ContentBlockWire = z.infer<typeof contentBlockSchema>;

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export interface AnthropicUsage {
  /** Prompt tokens after the last cache breakpoint that were not read from the cache. */
  input_tokens: number;
  output_tokens: number;
  /** Prompt tokens up to the last breakpoint that were computed (a cache write); 0 without a breakpoint. */
  cache_creation_input_tokens: number;
  /** Prompt tokens reused from the prompt cache. */
  cache_read_input_tokens: number;
}

export type ResponseContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ResponseContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

export type MessageStreamEvent =
  | { type: 'message_start'; message: AnthropicMessage }
  | { type: 'content_block_start'; index: number; content_block: ResponseContentBlock }
  | {
      type: 'content_block_delta';
      index: number;
      delta: { type: 'text_delta'; text: string } | { type: 'input_json_delta'; partial_json: string };
    }
  | { type: 'content_block_stop'; index: number }
  | { type: 'message_delta'; delta: { stop_reason: StopReason; stop_sequence: string | null }; usage: AnthropicUsage }
  | { type: 'message_stop' }
  | { type: 'ping' };

export interface CountTokensResponse {
  input_tokens: number;
}

/** Anthropic's error body (also the data of a mid-stream `error` event). */
export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id: string;
}

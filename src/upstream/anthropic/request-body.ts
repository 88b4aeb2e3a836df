import { invalidRequest } from '../../core/errors.js';
import type { ChatMessage, GenerateRequest, JsonValue, OutputConstraint, Prompt, ToolDefinition } from '../../engine/engine.js';
import type { AnthropicMessageWire, ContentBlockWire, MessagesRequest } from '../../protocol/anthropic/messages.js';
import { estimatePromptTokens } from '../estimate-tokens.js';

/** The Messages request Tokenmill sends upstream: Anthropic's wire request, with its tool definitions. */
export type MessagesBody = MessagesRequest & { tools?: AnthropicToolWire[] | null };

type AnthropicToolWire = NonNullable<MessagesRequest['tools']>[number];
type CacheControl = { type: 'ephemeral'; ttl?: '5m' | '1h' | null };
type ToolConstraint = Extract<OutputConstraint, { kind: 'tool-calls' }>;

/** Pins of an hour or more ask for Anthropic's one-hour cache; shorter ones get its default five minutes. */
const ONE_HOUR_MS = 60 * 60_000;

export interface MessagesBodyOptions {
  /** The upstream's model id. */
  model: string;
  /** `max_tokens` when the request sets none. */
  defaultMaxTokens: number;
  /** Tokens of context the catalog gives the model; caps the default `max_tokens` by what the prompt leaves. */
  contextSize: number;
}

/**
 * `GenerateRequest` -> the body of `POST /v1/messages` (always streamed). System messages become `system`; user,
 * assistant and tool messages Anthropic's alternating turns (assistant tool calls are `tool_use` blocks with their
 * arguments parsed, tool messages `tool_result` blocks of a user turn; consecutive turns of one role are merged).
 * A `tool-calls` constraint becomes `tool_choice` (`required` -> `any`, a name -> `tool`, and
 * `disable_parallel_tool_use` when not parallel); `cachePin` a `cache_control` breakpoint on the pinned prefix's last
 * block. What Anthropic cannot do is refused with the client's parameter named (docs/decisions/0014): text and
 * token prompts, grammar-like constraints, logprobs, echo, penalties, logit bias and vLLM's extras. `seed` and
 * `cache_salt` are dropped: Anthropic has neither, and neither changes what a correct answer is.
 */
export function toMessagesBody(request: GenerateRequest, options: MessagesBodyOptions): MessagesBody {
  const prompt = request.prompt;
  if (prompt.kind !== 'chat') {
    throw invalidRequest(
      'This model is served by an Anthropic Messages API, which takes chat messages only; use /v1/chat/completions or /v1/messages.',
      'prompt',
      'model_not_supported',
    );
  }
  refuseUnsupported(request);
  const { system, messages, blockOf } = toWireConversation(prompt.messages);
  if (request.sampling.temperature > 1) {
    throw invalidRequest('temperature must be at most 1 for this model (an Anthropic upstream).', 'temperature');
  }
  const body: MessagesBody = {
    model: options.model,
    messages,
    max_tokens: maxTokens(request, options),
    stream: true,
    temperature: request.sampling.temperature,
  };
  if (system.length > 0) body.system = system;
  if (request.sampling.topP < 1) body.top_p = request.sampling.topP;
  if (request.sampling.topK > 0) body.top_k = request.sampling.topK;
  if (request.stop.length > 0) body.stop_sequences = request.stop;
  const constraint = request.constraint?.kind === 'tool-calls' ? request.constraint : null;
  const tools = prompt.tools ?? [];
  if (tools.length > 0) {
    // Tools described but not to be called are still sent (with `none`): Anthropic wants the tools of any tool_use
    // blocks of the conversation defined.
    body.tools = tools.map(toWireTool);
    body.tool_choice = constraint ? toolChoice(constraint) : { type: 'none' };
  } else if (constraint && constraint.choice !== 'auto') {
    // Tools without definitions cannot be called; `auto` without tools is free text.
    throw invalidRequest('tool_choice requires tools.', 'tool_choice');
  }
  if (request.cachePin) markBreakpoint(request.cachePin, blockOf, body.tools ?? []);
  return body;
}

/** The request's `max_tokens`, else the default capped by the context the prompt leaves (at least 1). */
function maxTokens(request: GenerateRequest, options: MessagesBodyOptions): number {
  if (request.maxTokens === 0) {
    throw invalidRequest('max_tokens must be at least 1 for this model (an Anthropic upstream cannot only evaluate a prompt).', 'max_tokens');
  }
  if (request.maxTokens !== null) return request.maxTokens;
  return Math.max(1, Math.min(options.defaultMaxTokens, options.contextSize - estimatePromptTokens(request.prompt)));
}

/** Request features with no Anthropic counterpart, named as the client sent them (OpenAI's names). */
function refuseUnsupported(request: GenerateRequest): void {
  const sampling = request.sampling;
  const refused: Array<[boolean, string]> = [
    [request.logprobs !== null, 'logprobs'],
    [request.echo, 'echo'],
    [sampling.presencePenalty !== 0, 'presence_penalty'],
    [sampling.frequencyPenalty !== 0, 'frequency_penalty'],
    [sampling.repetitionPenalty !== 1, 'repetition_penalty'],
    [sampling.minP > 0, 'min_p'],
    [sampling.logitBias.size > 0, 'logit_bias'],
    [request.minTokens > 0, 'min_tokens'],
    [request.ignoreEos, 'ignore_eos'],
  ];
  for (const [set, param] of refused) {
    if (set) throw invalidRequest(`${param} is not supported by this model (an Anthropic upstream).`, param, 'unsupported_parameter');
  }
  const constraint = request.constraint;
  const free = constraint?.kind === 'tool-calls' ? constraint.text : constraint;
  if (free) {
    const param = free.kind === 'json-object' ? 'response_format' : free.param;
    throw invalidRequest(
      `Constrained output (${free.kind}) is not supported by this model (an Anthropic upstream); use tools with tool_choice instead.`,
      param,
      'unsupported_parameter',
    );
  }
}

function toolChoice(constraint: ToolConstraint): NonNullable<MessagesRequest['tool_choice']> {
  const disable = constraint.parallel ? {} : { disable_parallel_tool_use: true };
  if (typeof constraint.choice === 'object') return { type: 'tool', name: constraint.choice.name, ...disable };
  return constraint.choice === 'required' ? { type: 'any', ...disable } : { type: 'auto', ...disable };
}

function toWireTool(tool: ToolDefinition): AnthropicToolWire {
  const schema = tool.parameters ?? { type: 'object', properties: {} };
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema) || schema.type !== 'object') {
    throw invalidRequest('Anthropic tools take an object schema ("type": "object") for their arguments.', tool.param);
  }
  const wire: AnthropicToolWire = { name: tool.name, input_schema: schema as AnthropicToolWire['input_schema'] };
  if (tool.description !== null) wire.description = tool.description;
  return wire;
}

/** Engine call ids are `call_<...>`, Anthropic's `toolu_<...>`: mapped both ways so that ids round-trip. */
export function toToolUseId(callId: string): string {
  return callId.startsWith('call_') ? `toolu_${callId.slice('call_'.length)}` : callId;
}

export function fromToolUseId(toolUseId: string): string {
  return toolUseId.startsWith('toolu_') ? `call_${toolUseId.slice('toolu_'.length)}` : toolUseId;
}

interface WireConversation {
  system: Array<{ type: 'text'; text: string; cache_control?: CacheControl | null }>;
  messages: AnthropicMessageWire[];
  /** For each chat message (by its index in the prompt), the last wire block it became (for cache breakpoints). */
  blockOf: Array<ContentBlockWire | null>;
}

/** The chat messages as `system` and alternating user/assistant turns of blocks. */
function toWireConversation(chat: readonly ChatMessage[]): WireConversation {
  const system: WireConversation['system'] = [];
  const messages: AnthropicMessageWire[] = [];
  const blockOf: WireConversation['blockOf'] = [];
  const append = (role: 'user' | 'assistant', blocks: ContentBlockWire[]) => {
    const last = messages.at(-1);
    if (last && last.role === role) (last.content as ContentBlockWire[]).push(...blocks);
    else messages.push({ role, content: blocks });
  };
  chat.forEach((message, index) => {
    const blocks = toBlocks(message, index);
    if (message.role === 'system') {
      // A system message after the conversation began has no place in Anthropic's API; it joins `system`.
      system.push(...(blocks as WireConversation['system']));
    } else if (blocks.length > 0) {
      append(message.role === 'assistant' ? 'assistant' : 'user', blocks);
    }
    blockOf.push(blocks.at(-1) ?? null);
  });
  // Anthropic's conversation starts with a user turn.
  if (messages.length === 0 || messages[0].role !== 'user') messages.unshift({ role: 'user', content: [{ type: 'text', text: '' }] });
  // Prefill (`continueFinal`): a final assistant turn is continued by Anthropic as it is; it must not end in space.
  const last = messages.at(-1)!;
  if (last.role === 'assistant') {
    const final = (last.content as ContentBlockWire[]).at(-1);
    if (final?.type === 'text') final.text = final.text.trimEnd();
  }
  return { system, messages, blockOf };
}

function toBlocks(message: ChatMessage, index: number): ContentBlockWire[] {
  switch (message.role) {
    case 'system':
    case 'user':
      // Anthropic refuses empty text blocks; an empty message is left out (its neighbours' turns may then merge).
      return message.content.length > 0 ? [{ type: 'text', text: message.content }] : [];
    case 'tool':
      return [{ type: 'tool_result', tool_use_id: toToolUseId(message.toolCallId ?? ''), content: message.content }];
    case 'assistant': {
      const blocks: ContentBlockWire[] = message.content.length > 0 ? [{ type: 'text', text: message.content }] : [];
      (message.toolCalls ?? []).forEach((call, callIndex) => {
        const input = parseArguments(call.arguments, `messages[${index}].tool_calls[${callIndex}].function.arguments`);
        blocks.push({ type: 'tool_use', id: toToolUseId(call.id), name: call.name, input });
      });
      // An empty assistant message (no text, no calls) is left out, as empty user ones are.
      return blocks;
    }
  }
}

/** A tool call's arguments as Anthropic's `input` object. */
function parseArguments(text: string, param: string): Record<string, JsonValue> {
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw invalidRequest('Tool call arguments must be a JSON object for this model (an Anthropic upstream).', param);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidRequest('Tool call arguments must be a JSON object for this model (an Anthropic upstream).', param);
  }
  return value as Record<string, JsonValue>;
}

/**
 * A `cache_control` breakpoint at the end of the pinned prefix: on the block of the prefix's last message (the whole
 * message when the prefix cut it short), on the last system block when only the system prompt is pinned, or on
 * the last tool when the prefix holds only tools (they come first in Anthropic's order).
 */
function markBreakpoint(pin: NonNullable<GenerateRequest['cachePin']>, blockOf: WireConversation['blockOf'], tools: AnthropicToolWire[]): void {
  const prefix: Prompt = pin.prefix;
  if (prefix.kind !== 'chat') return;
  const control: CacheControl = pin.ttlMs >= ONE_HOUR_MS ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
  for (let index = Math.min(prefix.messages.length, blockOf.length) - 1; index >= 0; index--) {
    const block = blockOf[index];
    if (block) {
      block.cache_control = control;
      return;
    }
  }
  const tool = tools.at(-1);
  if (tool) tool.cache_control = control;
}

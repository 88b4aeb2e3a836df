import type { ChatMessage, JsonValue, OutputConstraint, Prompt, ToolDefinition } from '../../engine/engine.js';
import type {
  AnthropicMessageWire,
  ContentBlockWire,
  CountTokensRequest,
  MessagesRequest,
} from '../../protocol/anthropic/messages.js';
import { invalidRequest } from '../errors.js';
import type { InferenceRequest, TranslateContext } from '../inference/inference-request.js';
import { resolveGeneration } from './resolve-generation.js';

/** How long a `cache_control` breakpoint pins its prefix: Anthropic's default TTL, or its `1h` one. */
const PIN_TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

type ToolConstraint = Extract<OutputConstraint, { kind: 'tool-calls' }>;

/**
 * Anthropic Messages -> one InferenceRequest. Anthropic's defaults: temperature 1, top_p and top_k off, tool_choice
 * `auto` with tools; `any` is OpenAI's `required`, `tool` a named function, `none` leaves tools out of the prompt.
 * `tool_use` blocks become the assistant's tool calls, `tool_result` blocks tool messages; text blocks of one turn
 * are joined with a newline. A final assistant message (without tool_use) is a prefill that the answer continues.
 * `cache_control` breakpoints become the generation's `cachePin`: the conversation up to the last breakpoint, kept
 * cached for the breakpoint's TTL.
 */
export function translateMessagesRequest(wire: MessagesRequest, context: TranslateContext): InferenceRequest {
  const { prompt, constraint, cachePrefix } = translatePrompt(wire);
  const resolved = resolveGeneration(
    { model: wire.model, temperature: wire.temperature, top_p: wire.top_p, top_k: wire.top_k, stop: wire.stop_sequences, stream: wire.stream },
    context,
    { maxTokens: wire.max_tokens, logprobs: null, echo: false, constraint },
  );
  const cachePin = cachePrefix === null ? null : { prefix: cachePrefix, ttlMs: PIN_TTL_MS[longestTtl(wire)] };
  return {
    model: wire.model,
    prompts: [prompt],
    n: 1,
    ...resolved,
    generation: { ...resolved.generation, cachePin },
    includeUsage: false,
  };
}

/** The prompt of `count_tokens`: the very one generation would see. */
export function translateCountTokensRequest(wire: CountTokensRequest): Prompt {
  return translatePrompt(wire).prompt;
}

function translatePrompt(wire: CountTokensRequest): { prompt: Prompt; constraint: ToolConstraint | null; cachePrefix: Prompt | null } {
  const { tools, constraint } = resolveAnthropicTools(wire);
  const system = systemMessages(wire.system);
  const messages = [...system, ...translateMessages(wire.messages)];
  const chat = (list: ChatMessage[]): Prompt => (tools.length > 0 ? { kind: 'chat', messages: list, tools } : { kind: 'chat', messages: list });
  const last = messages.at(-1)!;
  // A final assistant message is a prefill: the answer continues it (Anthropic's behaviour).
  const prompt: Prompt = { ...chat(messages), ...(last.role === 'assistant' && !last.toolCalls?.length ? { continueFinal: true } : {}) };
  // Top-level cache_control marks the last block, so the whole prompt (the same object: rendered once).
  const cachePrefix = wire.cache_control ? prompt : cachePrefixOf(wire, system, chat);
  return { prompt, constraint, cachePrefix };
}

function systemMessages(system: CountTokensRequest['system']): ChatMessage[] {
  if (system === null || system === undefined) return [];
  const content = typeof system === 'string' ? system : system.map((block) => block.text).join('\n');
  return [{ role: 'system', content }];
}

function translateMessages(messages: readonly AnthropicMessageWire[]): ChatMessage[] {
  return messages.flatMap((message, index) => translateMessage(message, `messages[${index}]`));
}

function translateMessage(message: AnthropicMessageWire, param: string): ChatMessage[] {
  if (typeof message.content === 'string') return [{ role: message.role, content: message.content }];
  const blocks = message.content;
  blocks.forEach((block, index) => refuseUnsupported(block, `${param}.content[${index}]`));
  return message.role === 'assistant' ? [assistantMessage(blocks, param)] : userMessages(blocks, param);
}

function assistantMessage(blocks: readonly ContentBlockWire[], param: string): ChatMessage {
  const texts: string[] = [];
  const toolCalls: NonNullable<ChatMessage['toolCalls']> = [];
  blocks.forEach((block, index) => {
    if (block.type === 'text') texts.push(block.text);
    else if (block.type === 'tool_use') toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    else throw invalidRequest(`An assistant message cannot hold '${block.type}' blocks.`, `${param}.content[${index}].type`);
  });
  return toolCalls.length > 0 ? { role: 'assistant', content: texts.join('\n'), toolCalls } : { role: 'assistant', content: texts.join('\n') };
}

/** A user turn: each tool_result becomes a tool message, runs of text one user message, in their order. */
function userMessages(blocks: readonly ContentBlockWire[], param: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  let texts: string[] = [];
  const flush = () => {
    if (texts.length > 0) out.push({ role: 'user', content: texts.join('\n') });
    texts = [];
  };
  blocks.forEach((block, index) => {
    const blockParam = `${param}.content[${index}]`;
    if (block.type === 'text') texts.push(block.text);
    else if (block.type === 'tool_result') {
      flush();
      out.push({ role: 'tool', content: toolResultText(block, blockParam), toolCallId: block.tool_use_id });
    } else throw invalidRequest(`A user message cannot hold '${block.type}' blocks.`, `${blockParam}.type`);
  });
  flush();
  if (out.length === 0) out.push({ role: 'user', content: '' });
  return out;
}

/** A tool result's text; an error result (`is_error`) is marked as one for the model. */
function toolResultText(block: Extract<ContentBlockWire, { type: 'tool_result' }>, param: string): string {
  const content = block.content ?? '';
  const text =
    typeof content === 'string'
      ? content
      : content
          .map((part, index) => {
            refuseUnsupported(part, `${param}.content[${index}]`);
            return part.type === 'text' ? part.text : '';
          })
          .join('\n');
  return block.is_error ? `Error: ${text}` : text;
}

function refuseUnsupported(block: { type: string }, param: string): void {
  if (block.type === 'text' || block.type === 'tool_use' || block.type === 'tool_result') return;
  throw invalidRequest(
    `Content blocks of type '${block.type}' are not supported by this server; only 'text', 'tool_use' and 'tool_result' are.`,
    `${param}.type`,
  );
}

/** Tools, tool_choice (default `auto` with tools) and disable_parallel_tool_use, checked. */
function resolveAnthropicTools(wire: CountTokensRequest): { tools: ToolDefinition[]; constraint: ToolConstraint | null } {
  const wireTools = wire.tools ?? [];
  const choice: NonNullable<CountTokensRequest['tool_choice']> = wire.tool_choice ?? (wireTools.length > 0 ? { type: 'auto' } : { type: 'none' });
  if (wireTools.length === 0) {
    if (choice.type === 'any' || choice.type === 'tool') {
      throw invalidRequest(`tool_choice '${choice.type}' requires tools.`, 'tool_choice');
    }
    return { tools: [], constraint: null };
  }
  const names = new Set<string>();
  const tools = wireTools.map((tool, index): ToolDefinition => {
    if (names.has(tool.name)) throw invalidRequest(`Two tools are named '${tool.name}'; names must be unique.`, `tools[${index}].name`);
    names.add(tool.name);
    return {
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.input_schema as JsonValue,
      param: `tools[${index}].input_schema`,
    };
  });
  if (choice.type === 'none') return { tools: [], constraint: null };
  if (choice.type === 'tool' && !names.has(choice.name)) {
    throw invalidRequest(`tool_choice names the tool '${choice.name}', which is not in tools.`, 'tool_choice.name');
  }
  return {
    tools,
    constraint: {
      kind: 'tool-calls',
      choice: choice.type === 'tool' ? { name: choice.name } : choice.type === 'any' ? 'required' : 'auto',
      parallel: !(choice.disable_parallel_tool_use ?? false),
      text: null,
    },
  };
}

/** '1h' when any breakpoint asks for Anthropic's one-hour TTL, else the default '5m'. */
function longestTtl(wire: CountTokensRequest): '5m' | '1h' {
  const blocks: object[] = [
    wire,
    ...(wire.tools ?? []),
    ...(Array.isArray(wire.system) ? wire.system : []),
    ...wire.messages.flatMap((message) => (typeof message.content === 'string' ? [] : message.content)),
  ];
  return blocks.some((block) => (block as { cache_control?: { ttl?: unknown } | null }).cache_control?.ttl === '1h') ? '1h' : '5m';
}

/**
 * The prompt up to the last `cache_control` breakpoint. Anthropic orders a request tools, system, messages; here
 * tools are described in the system message, so a breakpoint on a tool or a system block marks the system message
 * (with the tools), and one on a message block marks the conversation up to that block.
 */
function cachePrefixOf(wire: CountTokensRequest, system: ChatMessage[], chat: (messages: ChatMessage[]) => Prompt): Prompt | null {
  for (let index = wire.messages.length - 1; index >= 0; index--) {
    const message = wire.messages[index];
    if (typeof message.content === 'string') continue;
    const blocks = message.content;
    const last = blocks.findLastIndex(hasBreakpoint);
    if (last < 0) continue;
    const truncated = { ...message, content: blocks.slice(0, last + 1) };
    return chat([...system, ...translateMessages([...wire.messages.slice(0, index), truncated])]);
  }
  const systemMarked = Array.isArray(wire.system) && wire.system.some(hasBreakpoint);
  const toolsMarked = (wire.tools ?? []).some(hasBreakpoint);
  return systemMarked || toolsMarked ? chat(system) : null;
}

function hasBreakpoint(block: object): boolean {
  const control = (block as { cache_control?: unknown }).cache_control;
  return control !== null && control !== undefined;
}

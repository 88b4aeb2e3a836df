import {
  JinjaTemplateChatWrapper,
  LlamaText,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { ChatMessage, ToolDefinition } from '../engine.js';
import type { ToolCallFormat } from './tool-calls/tool-call-format.js';

/** A rendered chat: the prompt tokens and what ends the model's turn besides its end-of-generation tokens. */
export interface RenderedChat {
  tokens: Token[];
  stopStrings: string[];
  stopTokens: Token[];
}

/**
 * Picks the chat format of a model: the operator's Jinja override, else the template in the GGUF metadata
 * (`tokenizer.chat_template`), else node-llama-cpp's detection from the model's architecture and name, whose final
 * fallback is the Llama 2 chat format (`[INST] ... [/INST]`, with `<<SYS>>` for system messages).
 */
export function createChatWrapper(model: LlamaModel, templateOverride: string | null): ChatWrapper {
  if (templateOverride !== null) return new JinjaTemplateChatWrapper({ template: templateOverride });
  return resolveChatWrapper(model);
}

/**
 * Renders a conversation through the model's chat template. Tools are described in the system message, and past
 * tool calls and results are written in the tool-call format's own syntax (templates without a tool role show a
 * result as a user turn).
 */
export function renderChat(
  model: LlamaModel,
  wrapper: ChatWrapper,
  messages: readonly ChatMessage[],
  tools: readonly ToolDefinition[],
  format: ToolCallFormat,
  continueFinal = false,
): RenderedChat {
  const callNames = new Map<string, string>();
  for (const message of messages) for (const call of message.toolCalls ?? []) callNames.set(call.id, call.name);
  const history: ChatHistoryItem[] = messages.map((message) => toHistoryItem(message, format, callNames));
  if (tools.length > 0) {
    const description = format.describeTools(tools);
    const first = history[0];
    if (first?.type === 'system') history[0] = { type: 'system', text: `${String(first.text)}\n\n${description}` };
    else history.unshift({ type: 'system', text: description });
  }
  // The model's turn is the last history item: a new, empty one, or the prefilled answer it continues.
  const last = messages.at(-1);
  if (!(continueFinal && last?.role === 'assistant' && !last.toolCalls?.length)) history.push({ type: 'model', response: [] });
  const state = wrapper.generateContextState({ chatHistory: history });
  const tokens = state.contextText.tokenize(model.tokenizer);
  const stopStrings: string[] = [];
  const stopTokens: Token[] = [];
  for (const trigger of state.stopGenerationTriggers) {
    const text = LlamaText(trigger);
    if (text.values.every((value) => typeof value === 'string')) {
      const stop = text.values.join('');
      if (stop.length > 0) stopStrings.push(stop);
      continue;
    }
    const triggerTokens = text.tokenize(model.tokenizer, 'trimLeadingSpace');
    if (triggerTokens.length === 1 && !model.isEogToken(triggerTokens[0])) stopTokens.push(triggerTokens[0]);
  }
  return { tokens, stopStrings, stopTokens };
}

function toHistoryItem(message: ChatMessage, format: ToolCallFormat, callNames: ReadonlyMap<string, string>): ChatHistoryItem {
  switch (message.role) {
    case 'system':
      return { type: 'system', text: message.content };
    case 'user':
      return { type: 'user', text: message.content };
    case 'assistant': {
      const calls = message.toolCalls && message.toolCalls.length > 0 ? format.renderCalls(message.toolCalls) : '';
      const text = [message.content, calls].filter((part) => part.length > 0).join('\n');
      return { type: 'model', response: [text] };
    }
    case 'tool': {
      const id = message.toolCallId ?? '';
      return { type: 'user', text: format.renderResult(message.content, { id, name: callNames.get(id) ?? null }) };
    }
  }
}

import {
  JinjaTemplateChatWrapper,
  LlamaText,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { ChatMessage } from '../engine.js';

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

export function renderChat(model: LlamaModel, wrapper: ChatWrapper, messages: readonly ChatMessage[]): RenderedChat {
  const history: ChatHistoryItem[] = messages.map(toHistoryItem);
  history.push({ type: 'model', response: [] });
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

function toHistoryItem(message: ChatMessage): ChatHistoryItem {
  switch (message.role) {
    case 'system':
      return { type: 'system', text: message.content };
    case 'user':
      return { type: 'user', text: message.content };
    case 'assistant':
      return { type: 'model', response: [message.content] };
    case 'tool':
      // Until tool calling renders results in the model's own format, a tool result is shown as user text.
      return { type: 'user', text: `Tool result${message.toolCallId ? ` (${message.toolCallId})` : ''}: ${message.content}` };
  }
}

import type { Prompt } from '../engine/engine.js';

/**
 * Token estimates for models whose tokenizer Tokenmill does not have (upstreams): one token per 4 characters
 * (UTF-16 code units) rounded up, plus 4 tokens per chat message for its role and delimiters, plus the tools' JSON.
 * English BPE text averages about 4 characters per token; the estimate is used only to reserve funds and rate
 * limits before the upstream reports its own count (docs/decisions/0009-upstream-token-estimates.md).
 */
export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Tokens a chat message costs beyond its content (role, delimiters), as OpenAI's cookbook counts them. */
const PER_MESSAGE_TOKENS = 4;

export function estimatePromptTokens(prompt: Prompt): number {
  switch (prompt.kind) {
    case 'tokens':
      return prompt.tokens.length;
    case 'text':
      return estimateTextTokens(prompt.text);
    case 'chat': {
      let total = 0;
      for (const message of prompt.messages) {
        total += PER_MESSAGE_TOKENS + estimateTextTokens(message.content);
        for (const call of message.toolCalls ?? []) total += estimateTextTokens(call.name) + estimateTextTokens(call.arguments);
      }
      if (prompt.tools && prompt.tools.length > 0) {
        total += estimateTextTokens(JSON.stringify(prompt.tools.map(({ name, description, parameters }) => ({ name, description, parameters }))));
      }
      return total;
    }
  }
}

import type { Prompt } from '../engine/engine.js';

/**
 * Token estimates for models whose tokenizer Tokenmill does not have (upstreams): one token per 3 UTF-8 bytes
 * rounded up, plus 8 tokens per chat message for its role and template, plus the tools' JSON. It errs high on
 * purpose: English BPE text averages about 4 bytes a token, CJK about 3, and the estimate sizes the reservation,
 * which caps what a request can be billed (docs/decisions/0012-upstream-token-estimates.md).
 */
export function estimateTextTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 3);
}

/** Tokens a chat message costs beyond its content (role, delimiters, template), rounded up from OpenAI's 4. */
const PER_MESSAGE_TOKENS = 8;

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

/** Usage when an upstream reports none: the prompt estimate, and a token per 4 characters of output. */
export function estimateUsage(prompt: Prompt, outputCharacters: number): { promptTokens: number; cachedTokens: number; completionTokens: number } {
  return { promptTokens: estimatePromptTokens(prompt), cachedTokens: 0, completionTokens: Math.ceil(outputCharacters / 4) };
}

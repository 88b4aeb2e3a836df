import type { LlamaModel, Token } from 'node-llama-cpp';

/** Longest UTF-8 character, in bytes; byte-fallback tokens carry one byte each. */
const MAX_PENDING_TOKENS = 4;
const REPLACEMENT = '\uFFFD';

/**
 * Turns generated tokens into text incrementally. Tokens whose bytes do not yet form a whole UTF-8 character
 * (byte-fallback tokens of random or multilingual models) are held back until they do; if they never do within
 * 4 tokens, or generation ends, they are emitted with U+FFFD replacement characters. So a stream never carries a
 * broken character, and the concatenated deltas equal the detokenized output.
 */
export class TokenTextDecoder {
  private pending: Token[] = [];
  private context: Token[];

  constructor(
    private readonly model: LlamaModel,
    /** Tokens that precede the output (the end of the prompt), for the tokenizer's leading-space rules. */
    precedingTokens: readonly Token[],
  ) {
    this.context = precedingTokens.slice(-MAX_PENDING_TOKENS) as Token[];
  }

  push(token: Token): string {
    this.pending.push(token);
    const text = this.model.detokenize(this.pending, false, this.context);
    if (text.endsWith(REPLACEMENT) && this.pending.length < MAX_PENDING_TOKENS) return '';
    this.commit();
    return text;
  }

  flush(): string {
    if (this.pending.length === 0) return '';
    const text = this.model.detokenize(this.pending, false, this.context);
    this.commit();
    return text;
  }

  private commit(): void {
    this.context = [...this.context, ...this.pending].slice(-MAX_PENDING_TOKENS);
    this.pending = [];
  }
}

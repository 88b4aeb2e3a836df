import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import type { OutputConstraint, ToolDefinition } from '../../engine.js';
import type { ToolCallFormat } from '../tool-calls/tool-call-format.js';
import { invalidGrammar } from './constraint-errors.js';
import { constraintToGbnf } from './constraint-to-gbnf.js';

/** Compiled grammars kept per model, least recently used evicted first. */
const DEFAULT_CAPACITY = 128;

/**
 * Compiles constraints into llama.cpp grammars, once per distinct constraint: converting a schema and parsing the
 * grammar cost far more than a token, and clients repeat the same schema request after request.
 */
export class GrammarCache {
  private readonly entries = new Map<string, LlamaGrammar>();

  constructor(
    private readonly llama: Llama,
    private readonly format: ToolCallFormat,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  /** The grammar of a constraint; throws 400 errors for bad schemas, regexes and grammars. */
  async grammarFor(constraint: OutputConstraint, tools: readonly ToolDefinition[]): Promise<LlamaGrammar> {
    const key = JSON.stringify(constraint.kind === 'tool-calls' ? [constraint, tools] : constraint);
    const cached = this.entries.get(key);
    if (cached) {
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const gbnf = constraintToGbnf(constraint, tools, this.format);
    let grammar: LlamaGrammar;
    try {
      grammar = await this.llama.createGrammar({ grammar: gbnf });
    } catch (error) {
      if (constraint.kind !== 'gbnf') throw error;
      // checkGbnf found nothing, yet llama.cpp refused it (a limit it has, such as nested repetition counts).
      throw invalidGrammar(constraint.param, `llama.cpp could not parse it (${error instanceof Error ? error.message : String(error)}); check repetition counts.`);
    }
    this.entries.set(key, grammar);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return grammar;
  }
}

import type { ChatMessage, ToolChoice, ToolDefinition } from '../../engine.js';
import type { GbnfBuilder } from '../grammar/gbnf-builder.js';
import type { OutputReader } from '../output-reader.js';

/** The most calls one answer may hold when parallel calls are allowed (a bound, so that every answer ends). */
export const MAX_PARALLEL_TOOL_CALLS = 8;

export interface ToolCallGrammarOptions {
  tools: readonly ToolDefinition[];
  choice: ToolChoice;
  parallel: boolean;
  /** The rule of the text answer that `auto` allows instead of calls; null: free text. */
  textRule: string | null;
}

/**
 * How one model family calls tools: how the tools are described in the prompt, how past calls and their results
 * appear in the conversation, the grammar of a calling answer, and how that answer is read back into calls. One
 * strategy per family, chosen by selectToolCallFormat.
 */
export interface ToolCallFormat {
  readonly name: string;
  /** System prompt text that describes the tools and how to call them. */
  describeTools(tools: readonly ToolDefinition[]): string;
  /** The model's text for the calls of an assistant turn (after its text content, if any). */
  renderCalls(calls: NonNullable<ChatMessage['toolCalls']>): string;
  /** The text of a tool's result in the conversation; `name` is the called function, when the history has it. */
  renderResult(content: string, call: { id: string; name: string | null }): string;
  /** Adds the rules of an answer to the grammar and returns its root expression. Throws 400 errors for bad schemas. */
  grammar(builder: GbnfBuilder, options: ToolCallGrammarOptions): string;
  /** Reads an answer; `callsOnly`: the grammar allows calls only (tool_choice required or a named tool). */
  createReader(callsOnly: boolean): OutputReader;
}

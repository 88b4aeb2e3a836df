import type { JsonValue, OutputConstraint, ToolDefinition } from '../../engine/engine.js';
import type { ChatCompletionRequest } from '../../protocol/openai/chat-completions.js';
import { invalidRequest } from '../errors.js';

export interface ResolvedTools {
  /** Tools to describe in the prompt; empty with tool_choice none. */
  tools: ToolDefinition[];
  /** The tool-call constraint, or null when the model may not call tools. */
  constraint: Extract<OutputConstraint, { kind: 'tool-calls' }> | null;
}

/**
 * Resolves `tools`, `tool_choice` (default `auto` with tools, as OpenAI) and `parallel_tool_calls` (default true).
 * `text` constrains the text answer that `auto` allows instead of calls (from response_format or guided decoding).
 */
export function resolveTools(wire: ChatCompletionRequest, text: OutputConstraint | null): ResolvedTools {
  const wireTools = wire.tools ?? [];
  const choice = wire.tool_choice ?? (wireTools.length > 0 ? 'auto' : 'none');
  if (wireTools.length === 0) {
    if (choice !== 'none' && choice !== 'auto') {
      throw invalidRequest("tool_choice requires tools; send tools or set tool_choice to 'none'.", 'tool_choice');
    }
    return { tools: [], constraint: null };
  }
  const names = new Set<string>();
  const tools = wireTools.map((tool, index): ToolDefinition => {
    if (names.has(tool.function.name)) {
      throw invalidRequest(`Two tools are named '${tool.function.name}'; names must be unique.`, `tools[${index}].function.name`);
    }
    names.add(tool.function.name);
    return {
      name: tool.function.name,
      description: tool.function.description ?? null,
      parameters: (tool.function.parameters ?? null) as JsonValue | null,
      param: `tools[${index}].function`,
    };
  });
  if (choice === 'none') return { tools: [], constraint: null };
  if (typeof choice === 'object' && !names.has(choice.function.name)) {
    throw invalidRequest(`tool_choice names the function '${choice.function.name}', which is not in tools.`, 'tool_choice.function.name');
  }
  if (text?.kind === 'gbnf') {
    throw invalidRequest("grammar cannot be combined with tools (unless tool_choice is 'none'); use response_format or guided_regex.", 'grammar');
  }
  const textConstraint = text === null || text.kind === 'tool-calls' ? null : text;
  return {
    tools,
    constraint: {
      kind: 'tool-calls',
      choice: typeof choice === 'object' ? { name: choice.function.name } : choice,
      parallel: wire.parallel_tool_calls ?? true,
      text: textConstraint,
    },
  };
}

import type { JsonValue, ToolDefinition } from '../../engine.js';
import { invalidSchema } from '../grammar/constraint-errors.js';
import { gbnfLiteral, type GbnfBuilder } from '../grammar/gbnf-builder.js';
import { jsonSchemaToGbnf } from '../grammar/json-schema-to-gbnf.js';
import { GenericJsonCallReader } from './generic-json-reader.js';
import { MAX_PARALLEL_TOOL_CALLS, type ToolCallFormat, type ToolCallGrammarOptions } from './tool-call-format.js';

/**
 * The generic format, for models without a tool-calling template of their own. A calling answer is a compact JSON
 * array of calls, `[{"name":"get_weather","arguments":{"city":"Paris"}}]` (one call unless parallel calls are
 * allowed, then up to 8). The tools are described in a system message; past calls appear as that JSON in the
 * assistant's turn, and tool results as turns of the template's user role, naming the call they answer.
 */
export const genericJsonFormat: ToolCallFormat = {
  name: 'generic-json',

  describeTools(tools) {
    const lines = ['You can call these functions:'];
    for (const tool of tools) {
      lines.push(`- ${tool.name}${tool.description ? `: ${tool.description}` : ''}`);
      lines.push(`  Arguments (JSON Schema): ${JSON.stringify(tool.parameters ?? { type: 'object', properties: {} })}`);
    }
    const example = JSON.stringify([{ name: tools[0]?.name ?? 'function_name', arguments: {} }]);
    lines.push(
      '',
      'To call functions, reply with only a JSON array of calls, each {"name": <function name>, "arguments": <arguments object>}, ' +
        `for example: ${example}`,
      'The results will be sent to you. To answer without calling a function, reply in plain text.',
    );
    return lines.join('\n');
  },

  renderCalls(calls) {
    return JSON.stringify(calls.map((call) => ({ name: call.name, arguments: parseArguments(call.arguments) })));
  },

  renderResult(content, call) {
    return `Result of ${call.name ?? 'the function'} (call ${call.id}): ${content}`;
  },

  grammar(builder: GbnfBuilder, options: ToolCallGrammarOptions): string {
    const tools = typeof options.choice === 'object' ? options.tools.filter((tool) => tool.name === (options.choice as { name: string }).name) : options.tools;
    const calls = tools.map((tool) => {
      const argumentsRule = argumentsGrammar(builder, tool);
      const head = gbnfLiteral(`{"name":${JSON.stringify(tool.name)},"arguments":`);
      return builder.add(`call-${tool.name}`, `${head} ${argumentsRule} "}"`);
    });
    const call = builder.add('call', calls.join(' | '));
    const more = options.parallel ? ` ("," ${call}){0,${MAX_PARALLEL_TOOL_CALLS - 1}}` : '';
    const callList = builder.add('calls', `"[" ${call}${more} "]"`);
    if (options.choice !== 'auto') return callList;
    // The text answer may not start with '[', so the first character tells calls from text.
    const text = options.textRule ?? builder.shared('free-text', () => '([^\\x5B] .*)?');
    return `${callList} | ${text}`;
  },

  createReader(callsOnly) {
    return new GenericJsonCallReader(callsOnly);
  },
};

/** The arguments must be an object: no parameters -> `{}`; a schema without `type` is taken as an object schema. */
function argumentsGrammar(builder: GbnfBuilder, tool: ToolDefinition): string {
  const param = `${tool.param}.parameters`;
  const schema = tool.parameters;
  if (schema === null) return '"{}"';
  if (typeof schema !== 'object' || Array.isArray(schema)) throw invalidSchema(param, [], 'parameters must be a JSON Schema object.');
  if (schema.type !== undefined && schema.type !== 'object') {
    throw invalidSchema(param, ['type'], "the parameters of a function must be a schema of type 'object'.");
  }
  const objectSchema: JsonValue = schema.type === undefined && schema.$ref === undefined && schema.anyOf === undefined ? { ...schema, type: 'object' } : schema;
  return jsonSchemaToGbnf(builder, objectSchema, param);
}

function parseArguments(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

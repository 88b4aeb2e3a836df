import { invalidRequest, TokenmillError } from '../../../core/errors.js';
import type { OutputConstraint, ToolDefinition } from '../../engine.js';
import type { ToolCallFormat } from '../tool-calls/tool-call-format.js';
import { checkGbnf } from './check-gbnf.js';
import { invalidGrammar, invalidSchema } from './constraint-errors.js';
import { GbnfBuilder, gbnfLiteral } from './gbnf-builder.js';
import { jsonObject } from './json-primitives.js';
import { jsonSchemaToGbnf } from './json-schema-to-gbnf.js';
import { regexToGbnf } from './regex-to-gbnf.js';

/**
 * The GBNF grammar of a constraint (its root rule is `root`). Client mistakes (a bad schema, regex or grammar) are
 * 400 errors naming the field; `tools` are the prompt's tools, for `tool-calls`.
 */
export function constraintToGbnf(constraint: OutputConstraint, tools: readonly ToolDefinition[], format: ToolCallFormat): string {
  if (constraint.kind === 'gbnf') {
    const problem = checkGbnf(constraint.grammar);
    if (problem !== null) throw invalidGrammar(constraint.param, problem);
    return constraint.grammar;
  }
  const builder = new GbnfBuilder();
  const root = addConstraint(builder, constraint, tools, format);
  const grammar = builder.build(root);
  const problem = checkGbnf(grammar);
  if (problem !== null) {
    if (problem.startsWith('Left recursion') && 'param' in constraint) {
      throw invalidSchema(constraint.param, [], 'a $ref recurses without any JSON in between (for example a definition that refers to itself directly).');
    }
    if (problem.startsWith('Left recursion') && constraint.kind === 'tool-calls') {
      throw new TokenmillError('invalid_request', 'invalid_schema', 'A tool\'s parameters schema has a $ref that recurses without any JSON in between.', { param: 'tools' });
    }
    throw new Error(`Tokenmill built an invalid grammar (${problem}):\n${grammar}`);
  }
  return grammar;
}

function addConstraint(
  builder: GbnfBuilder,
  constraint: Exclude<OutputConstraint, { kind: 'gbnf' }>,
  tools: readonly ToolDefinition[],
  format: ToolCallFormat,
): string {
  switch (constraint.kind) {
    case 'json-object':
      return jsonObject(builder);
    case 'json-schema':
      return jsonSchemaToGbnf(builder, constraint.schema, constraint.param);
    case 'regex':
      return regexToGbnf(builder, constraint.pattern, 'text', constraint.param);
    case 'choice':
      if (constraint.choices.some((choice) => choice.includes('\u0000'))) {
        throw invalidRequest('A choice contains NUL (\\u0000), which no token can produce.', constraint.param);
      }
      return builder.add('choice', [...new Set(constraint.choices)].map(gbnfLiteral).join(' | '));
    case 'tool-calls': {
      const textRule = constraint.text === null ? null : addConstraint(builder, constraint.text, tools, format);
      return format.grammar(builder, { tools, choice: constraint.choice, parallel: constraint.parallel, textRule });
    }
  }
}

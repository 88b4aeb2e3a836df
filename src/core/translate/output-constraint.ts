import type { JsonValue, OutputConstraint } from '../../engine/engine.js';
import type { responseFormatSchema } from '../../protocol/openai/common.js';
import type { z } from 'zod';
import { invalidRequest } from '../errors.js';

/** The constraint fields as chat and completions name them. */
export interface WireConstraintFields {
  response_format?: z.infer<typeof responseFormatSchema> | null;
  grammar?: string | null;
  guided_regex?: string | null;
  guided_choice?: string[] | null;
}

/** The one output constraint a request asks for (at most one of the fields may be set), or null for free text. */
export function resolveOutputConstraint(wire: WireConstraintFields): OutputConstraint | null {
  const candidates: Array<[string, OutputConstraint]> = [];
  const format = wire.response_format;
  if (format?.type === 'json_object') candidates.push(['response_format', { kind: 'json-object' }]);
  if (format?.type === 'json_schema') {
    const schema = (format.json_schema.schema ?? {}) as JsonValue;
    candidates.push(['response_format', { kind: 'json-schema', schema, param: 'response_format.json_schema.schema' }]);
  }
  if (wire.grammar != null) candidates.push(['grammar', { kind: 'gbnf', grammar: wire.grammar, param: 'grammar' }]);
  if (wire.guided_regex != null) candidates.push(['guided_regex', { kind: 'regex', pattern: wire.guided_regex, param: 'guided_regex' }]);
  if (wire.guided_choice != null) candidates.push(['guided_choice', { kind: 'choice', choices: wire.guided_choice, param: 'guided_choice' }]);
  if (candidates.length > 1) {
    throw invalidRequest(
      `Only one of response_format (json_object or json_schema), grammar, guided_regex and guided_choice may be set; got ${candidates.map(([field]) => field).join(' and ')}.`,
      candidates[1][0],
    );
  }
  return candidates[0]?.[1] ?? null;
}

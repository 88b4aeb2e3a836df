import type { z } from 'zod';
import { invalidRequest } from '../core/errors.js';

/**
 * Parses a wire body with its schema. Unknown fields are ignored; the first bad field is named in `param`,
 * in OpenAI's style (`messages[0].role`).
 */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_json');
  }
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.path.length > 0 ? formatPath(issue.path) : null;
  const message = issue.code === 'invalid_type' && issue.input === undefined
    ? `Missing required parameter: '${param}'.`
    : `Invalid value for '${param ?? 'body'}': ${issue.message}`;
  throw invalidRequest(message, param, issue.code === 'invalid_type' && issue.input === undefined ? 'missing_required_parameter' : 'invalid_value');
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text.length > 0 ? `.${String(part)}` : String(part);
  }
  return text;
}

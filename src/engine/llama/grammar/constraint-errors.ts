import { TokenmillError } from '../../../core/errors.js';

/** A place inside a request field: property names and array indexes. */
export type SchemaPath = ReadonlyArray<string | number>;

/** `response_format.json_schema.schema` + ['properties', 'age', 'minimum'] -> `...schema.properties.age.minimum`. */
export function formatParam(base: string, path: SchemaPath): string {
  let text = base;
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : `.${part}`;
  return text;
}

/** A schema keyword that constrained decoding cannot enforce; it is refused rather than ignored. */
export function unsupportedKeyword(base: string, path: SchemaPath, reason: string): TokenmillError {
  const keyword = path[path.length - 1];
  return new TokenmillError(
    'invalid_request',
    'unsupported_schema_keyword',
    `The JSON Schema keyword '${String(keyword)}' at '${formatParam(base, path)}' is not supported: ${reason}`,
    { param: formatParam(base, path) },
  );
}

export function invalidSchema(base: string, path: SchemaPath, reason: string): TokenmillError {
  return new TokenmillError('invalid_request', 'invalid_schema', `Invalid JSON Schema at '${formatParam(base, path)}': ${reason}`, {
    param: formatParam(base, path),
  });
}

export function invalidRegex(param: string, reason: string, code = 'invalid_regex'): TokenmillError {
  return new TokenmillError('invalid_request', code, `The regular expression at '${param}' ${reason}`, { param });
}

export function invalidGrammar(param: string, reason: string): TokenmillError {
  return new TokenmillError('invalid_request', 'invalid_grammar', `Invalid grammar in '${param}': ${reason}`, { param });
}

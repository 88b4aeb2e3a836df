import type { GbnfBuilder } from './gbnf-builder.js';

/**
 * The JSON rules every JSON grammar shares. Output is compact JSON: no whitespace between tokens, so a small model
 * cannot wander off into endless blank space, and a value ends as soon as its last character is out.
 * Numbers have at most 15 integer digits (every such integer is exact in a double) and 15 fraction digits, and no
 * exponent; strings use the short escapes but not `\u` ones (so a string's length in characters is what it looks
 * like). Each of these only narrows what JSON allows, so every output is still valid JSON.
 */

/** Integers with up to this many digits are generated when a schema does not bound them. */
export const MAX_INTEGER_DIGITS = 15;
/** The largest magnitude an unbounded integer reaches: 10^15 - 1. */
export const MAX_NATURAL_INTEGER = 10 ** MAX_INTEGER_DIGITS - 1;

/** One character inside a JSON string, as it is written (a plain character or a short escape). */
export function jsonChar(builder: GbnfBuilder): string {
  return builder.shared('json-char', () => '[^"\\\\\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]');
}

export function jsonString(builder: GbnfBuilder): string {
  const char = jsonChar(builder);
  return builder.shared('json-string', () => `"\\"" ${char}* "\\""`);
}

export function jsonInteger(builder: GbnfBuilder): string {
  return builder.shared('json-integer', () => `"-"? ("0" | [1-9] [0-9]{0,${MAX_INTEGER_DIGITS - 1}})`);
}

/** A fraction: `.` and 1..15 digits. */
export function jsonFraction(builder: GbnfBuilder): string {
  return builder.shared('json-fraction', () => `"." [0-9]{1,${MAX_INTEGER_DIGITS}}`);
}

export function jsonNumber(builder: GbnfBuilder): string {
  const integer = jsonInteger(builder);
  const fraction = jsonFraction(builder);
  return builder.shared('json-number', () => `${integer} ${fraction}?`);
}

export function jsonBoolean(builder: GbnfBuilder): string {
  return builder.shared('json-boolean', () => '"true" | "false"');
}

/** Any JSON value. */
export function jsonValue(builder: GbnfBuilder): string {
  defineAnyJson(builder);
  return 'json-value';
}

/** Any JSON object. */
export function jsonObject(builder: GbnfBuilder): string {
  defineAnyJson(builder);
  return 'json-object';
}

function defineAnyJson(builder: GbnfBuilder): void {
  const string = jsonString(builder);
  const number = jsonNumber(builder);
  builder.shared('json-value', () => `json-object | json-array | ${string} | ${number} | "true" | "false" | "null"`);
  builder.shared('json-object', () => '"{" (json-member ("," json-member)*)? "}"');
  builder.shared('json-member', () => `${string} ":" json-value`);
  builder.shared('json-array', () => '"[" (json-value ("," json-value)*)? "]"');
}

import type { JsonValue } from '../../engine.js';
import { formatParam, invalidSchema, unsupportedKeyword, type SchemaPath } from './constraint-errors.js';
import { gbnfLiteral, type GbnfBuilder } from './gbnf-builder.js';
import { integerRangeGbnf, numberRangeGbnf } from './integer-range.js';
import { formatRule, isSupportedFormat, SUPPORTED_FORMATS } from './json-formats.js';
import { jsonChar, jsonFraction, jsonInteger, jsonNumber, jsonString, MAX_NATURAL_INTEGER } from './json-primitives.js';
import { regexToGbnf } from './regex-to-gbnf.js';

type SchemaObject = { [key: string]: JsonValue };

/** Largest length or count a schema may ask for (llama.cpp expands counted repetitions into rules). */
export const MAX_COUNT = 1000;

const QUOTE = gbnfLiteral('"');

/** The rule of a `string` schema: pattern, format, or length limits. */
export function stringRule(builder: GbnfBuilder, schema: SchemaObject, path: SchemaPath, param: string): string {
  const pattern = schema.pattern;
  if (pattern !== undefined) {
    if (typeof pattern !== 'string') throw invalidSchema(param, [...path, 'pattern'], 'pattern must be a string.');
    for (const keyword of ['minLength', 'maxLength']) {
      if (schema[keyword] !== undefined) {
        throw unsupportedKeyword(param, [...path, keyword], 'a length limit cannot be combined with a pattern; put it in the pattern.');
      }
    }
    // With both, the pattern is enforced: generators such as zod emit `format` together with the pattern that defines it.
    const inside = regexToGbnf(builder, pattern, 'json-string', formatParam(param, [...path, 'pattern']));
    return builder.add('string-pattern', `${QUOTE} ${inside} ${QUOTE}`);
  }
  const format = schema.format;
  if (format !== undefined) {
    if (typeof format !== 'string') throw invalidSchema(param, [...path, 'format'], 'format must be a string.');
    if (!isSupportedFormat(format)) {
      throw unsupportedKeyword(param, [...path, 'format'], `the format '${format}' cannot be enforced; supported formats: ${SUPPORTED_FORMATS.join(', ')}.`);
    }
    for (const keyword of ['minLength', 'maxLength']) {
      if (schema[keyword] !== undefined) {
        throw unsupportedKeyword(param, [...path, keyword], 'a length limit cannot be combined with a format.');
      }
    }
    return builder.add(`string-${format}`, `${QUOTE} ${formatRule(builder, format)} ${QUOTE}`);
  }
  const min = count(schema, 'minLength', path, param) ?? 0;
  const max = count(schema, 'maxLength', path, param);
  if (max !== null && max < min) throw invalidSchema(param, [...path, 'maxLength'], 'maxLength is below minLength.');
  if (min === 0 && max === null) return jsonString(builder);
  const char = jsonChar(builder);
  const repeat = max === null ? `${char}{${min},}` : `${char}{${min},${max}}`;
  return builder.add('string-length', `${QUOTE} ${repeat} ${QUOTE}`);
}

/** A non-negative integer keyword (minLength, maxItems, ...), or null when absent. */
export function count(schema: SchemaObject, keyword: string, path: SchemaPath, param: string): number | null {
  const value = schema[keyword];
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalidSchema(param, [...path, keyword], `${keyword} must be a non-negative integer.`);
  }
  if (value > MAX_COUNT) throw unsupportedKeyword(param, [...path, keyword], `values above ${MAX_COUNT} cannot be enforced.`);
  return value;
}

interface Bound {
  value: number;
  exclusive: boolean;
  keyword: string;
}

/**
 * The rule of an `integer` or `number` schema. Unbounded, integers have at most 15 digits. Integer bounds are
 * enforced exactly (inclusive or exclusive); number bounds must be whole numbers and inclusive.
 */
export function numericRule(builder: GbnfBuilder, schema: SchemaObject, integer: boolean, path: SchemaPath, param: string): string {
  const low = strictestBound(schema, 'minimum', 'exclusiveMinimum', 1, path, param);
  const high = strictestBound(schema, 'maximum', 'exclusiveMaximum', -1, path, param);
  if (low !== null && high !== null && (low.value > high.value || (low.value === high.value && (low.exclusive || high.exclusive)))) {
    throw invalidSchema(param, [...path, high.keyword], `no number satisfies both ${low.keyword} and ${high.keyword}.`);
  }
  if (integer) {
    let from = -MAX_NATURAL_INTEGER;
    let to = MAX_NATURAL_INTEGER;
    if (low) from = Math.max(from, low.exclusive ? Math.floor(low.value) + 1 : Math.ceil(low.value));
    if (high) to = Math.min(to, high.exclusive ? Math.ceil(high.value) - 1 : Math.floor(high.value));
    if (from > to) {
      const keyword = low && low.value > MAX_NATURAL_INTEGER ? low.keyword : high?.keyword ?? 'minimum';
      throw unsupportedKeyword(param, [...path, keyword], 'no integer of at most 15 digits is within the bounds.');
    }
    if (from === -MAX_NATURAL_INTEGER && to === MAX_NATURAL_INTEGER) return jsonInteger(builder);
    return builder.add('integer-range', integerRangeGbnf(from, to));
  }
  for (const bound of [low, high]) {
    if (bound === null) continue;
    if (bound.exclusive) {
      throw unsupportedKeyword(param, [...path, bound.keyword], 'exclusive bounds are supported for integers only; use minimum/maximum.');
    }
    if (!Number.isInteger(bound.value)) {
      throw unsupportedKeyword(param, [...path, bound.keyword], 'bounds of a number must be whole numbers.');
    }
  }
  const from = Math.max(low?.value ?? -MAX_NATURAL_INTEGER, -MAX_NATURAL_INTEGER);
  const to = Math.min(high?.value ?? MAX_NATURAL_INTEGER, MAX_NATURAL_INTEGER);
  if (from > to) throw unsupportedKeyword(param, [...path, low!.keyword], 'no number of at most 15 integer digits is within the bounds.');
  if (from === -MAX_NATURAL_INTEGER && to === MAX_NATURAL_INTEGER) return jsonNumber(builder);
  return builder.add('number-range', numberRangeGbnf(from, to, jsonFraction(builder)));
}

/**
 * The strictest of an inclusive and an exclusive bound (`direction` 1: lower bounds, -1: upper). Draft 4's boolean
 * exclusiveMinimum/Maximum makes the plain bound exclusive.
 */
function strictestBound(
  schema: SchemaObject,
  inclusiveKeyword: string,
  exclusiveKeyword: string,
  direction: 1 | -1,
  path: SchemaPath,
  param: string,
): Bound | null {
  const inclusive = schema[inclusiveKeyword];
  const exclusive = schema[exclusiveKeyword];
  const bounds: Bound[] = [];
  if (inclusive !== undefined) {
    if (typeof inclusive !== 'number') throw invalidSchema(param, [...path, inclusiveKeyword], `${inclusiveKeyword} must be a number.`);
    bounds.push({ value: inclusive, exclusive: exclusive === true, keyword: inclusiveKeyword });
  }
  if (typeof exclusive === 'number') bounds.push({ value: exclusive, exclusive: true, keyword: exclusiveKeyword });
  else if (exclusive !== undefined && typeof exclusive !== 'boolean') {
    throw invalidSchema(param, [...path, exclusiveKeyword], `${exclusiveKeyword} must be a number.`);
  } else if (exclusive === true && inclusive === undefined) {
    throw invalidSchema(param, [...path, exclusiveKeyword], `a boolean ${exclusiveKeyword} needs ${inclusiveKeyword}.`);
  }
  let strictest: Bound | null = null;
  for (const bound of bounds) {
    if (
      strictest === null ||
      bound.value * direction > strictest.value * direction ||
      (bound.value === strictest.value && bound.exclusive)
    ) {
      strictest = bound;
    }
  }
  return strictest;
}

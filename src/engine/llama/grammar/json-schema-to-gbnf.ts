import type { JsonValue } from '../../engine.js';
import { invalidSchema, unsupportedKeyword, type SchemaPath } from './constraint-errors.js';
import { gbnfLiteral, type GbnfBuilder } from './gbnf-builder.js';
import { jsonBoolean, jsonObject, jsonString, jsonValue } from './json-primitives.js';
import { count, numericRule, stringRule } from './json-schema-scalars.js';
import { ANNOTATION_KEYWORDS, ENFORCED_KEYWORDS, KEYWORDS_OF_TYPE, REFUSED_KEYWORDS } from './schema-keywords.js';

type SchemaObject = { [key: string]: JsonValue };

const TYPES = ['null', 'boolean', 'object', 'array', 'number', 'integer', 'string'];
/** Deeper schemas are refused (they would only serve to exhaust the stack). */
const MAX_DEPTH = 64;

/**
 * Adds the rules of a JSON Schema to the grammar and returns the name of its rule: the compact JSON values that
 * validate against the schema (a subset of them where noted in json-primitives.ts and json-formats.ts). A keyword
 * that cannot be enforced, or an invalid schema, is a 400 error whose `param` is the keyword's path under `param`.
 *
 * Design (after llama.cpp's json-schema-to-grammar, written anew): each subschema becomes a rule; `$ref` targets
 * become named rules created on first use, so recursive definitions work; object properties come in a fixed order
 * (required ones first), optional ones may be left out, and additional properties are never generated (the output
 * still validates); `oneOf` is enforced as `anyOf` (exact when its branches are disjoint, as in discriminated unions).
 */
export function jsonSchemaToGbnf(builder: GbnfBuilder, schema: JsonValue, param: string): string {
  return new JsonSchemaConverter(builder, schema, param).convert();
}

class JsonSchemaConverter {
  /** `$ref` value -> rule name. */
  private readonly references = new Map<string, string>();

  constructor(
    private readonly builder: GbnfBuilder,
    private readonly root: JsonValue,
    private readonly param: string,
  ) {}

  convert(): string {
    return this.visit(this.root, []);
  }

  private visit(schema: JsonValue, path: SchemaPath): string {
    if (path.length > MAX_DEPTH) throw invalidSchema(this.param, path, `the schema is nested more than ${MAX_DEPTH} levels deep.`);
    if (schema === true) return jsonValue(this.builder);
    if (schema === false) throw invalidSchema(this.param, path, "the schema 'false' admits no value.");
    if (!isObject(schema)) throw invalidSchema(this.param, path, 'a schema must be an object or a boolean.');
    const keywords = this.checkKeywords(schema, path);
    if (keywords.includes('$ref')) return this.reference(schema, keywords, path);
    const combinator = ['anyOf', 'oneOf', 'allOf'].filter((keyword) => keywords.includes(keyword));
    if (combinator.length > 0) return this.combination(schema, keywords, combinator, path);
    if (keywords.includes('const') || keywords.includes('enum')) return this.literals(schema, keywords, path);
    const alternatives = this.types(schema, path).map((type) => this.typed(type, schema, path));
    return this.builder.add(hint(path), alternatives.join(' | '));
  }

  /** The enforced keywords of the schema; refuses unknown and unenforceable ones. */
  private checkKeywords(schema: SchemaObject, path: SchemaPath): string[] {
    const enforced: string[] = [];
    for (const keyword of Object.keys(schema)) {
      if (ENFORCED_KEYWORDS.has(keyword)) enforced.push(keyword);
      else if (ANNOTATION_KEYWORDS.has(keyword) || keyword.startsWith('x-')) continue;
      else if (REFUSED_KEYWORDS[keyword] !== undefined) throw unsupportedKeyword(this.param, [...path, keyword], REFUSED_KEYWORDS[keyword]);
      else throw unsupportedKeyword(this.param, [...path, keyword], 'it is not a keyword that can be enforced (see the supported subset in the README).');
    }
    for (const home of ['$defs', 'definitions']) {
      if (schema[home] !== undefined && !isObject(schema[home])) throw invalidSchema(this.param, [...path, home], `${home} must be an object.`);
    }
    if (schema.uniqueItems === true) throw unsupportedKeyword(this.param, [...path, 'uniqueItems'], 'unique items cannot be enforced by a grammar.');
    if (schema.uniqueItems !== undefined && typeof schema.uniqueItems !== 'boolean') {
      throw invalidSchema(this.param, [...path, 'uniqueItems'], 'uniqueItems must be a boolean.');
    }
    if (schema.nullable !== undefined && typeof schema.nullable !== 'boolean') {
      throw invalidSchema(this.param, [...path, 'nullable'], 'nullable must be a boolean.');
    }
    return enforced.filter((keyword) => keyword !== 'uniqueItems');
  }

  private refuseSiblings(keywords: readonly string[], allowed: readonly string[], owner: string, path: SchemaPath): void {
    const sibling = keywords.find((keyword) => !allowed.includes(keyword));
    if (sibling !== undefined) {
      throw unsupportedKeyword(this.param, [...path, sibling], `keywords next to ${owner} are not supported; move them into the ${owner === '$ref' ? 'referenced schema' : `schemas of ${owner}`}.`);
    }
  }

  private reference(schema: SchemaObject, keywords: readonly string[], path: SchemaPath): string {
    this.refuseSiblings(keywords, ['$ref'], '$ref', path);
    const reference = schema.$ref;
    const refPath = [...path, '$ref'];
    if (typeof reference !== 'string') throw invalidSchema(this.param, refPath, '$ref must be a string.');
    const known = this.references.get(reference);
    if (known !== undefined) return known;
    if (reference !== '#' && !reference.startsWith('#/')) {
      throw unsupportedKeyword(this.param, refPath, `only references inside the schema ('#' or '#/...') are supported, not '${reference}'.`);
    }
    const tokens = reference === '#' ? [] : reference.slice(2).split('/').map(decodePointerToken);
    let target: JsonValue | undefined = this.root;
    const targetPath: Array<string | number> = [];
    for (const token of tokens) {
      if (Array.isArray(target) && /^\d+$/.test(token)) {
        target = target[Number(token)];
        targetPath.push(Number(token));
      } else if (isObject(target) && Object.hasOwn(target, token)) {
        target = target[token];
        targetPath.push(token);
      } else {
        target = undefined;
      }
      if (target === undefined) throw invalidSchema(this.param, refPath, `the reference '${reference}' does not resolve.`);
    }
    const name = this.builder.reserve(tokens.length > 0 ? `ref-${tokens[tokens.length - 1]}` : 'ref-root');
    this.references.set(reference, name);
    this.builder.define(name, this.visit(target, targetPath));
    return name;
  }

  private combination(schema: SchemaObject, keywords: readonly string[], combinators: string[], path: SchemaPath): string {
    if (combinators.length > 1) {
      throw unsupportedKeyword(this.param, [...path, combinators[1]], `only one of anyOf, oneOf and allOf per schema is supported.`);
    }
    const [keyword] = combinators;
    this.refuseSiblings(keywords, [keyword], keyword, path);
    const branches = schema[keyword];
    if (!Array.isArray(branches) || branches.length === 0) {
      throw invalidSchema(this.param, [...path, keyword], `${keyword} must be a non-empty array of schemas.`);
    }
    if (keyword === 'allOf') {
      if (branches.length > 1) throw unsupportedKeyword(this.param, [...path, keyword], 'allOf is supported with a single schema only.');
      return this.visit(branches[0], [...path, keyword, 0]);
    }
    const alternatives = branches.map((branch, index) => this.visit(branch, [...path, keyword, index]));
    return this.builder.add(hint(path), alternatives.join(' | '));
  }

  private literals(schema: SchemaObject, keywords: readonly string[], path: SchemaPath): string {
    this.refuseSiblings(keywords, ['const', 'enum', 'type', 'nullable'], keywords.includes('const') ? 'const' : 'enum', path);
    let values: JsonValue[];
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) throw invalidSchema(this.param, [...path, 'enum'], 'enum must be a non-empty array.');
      values = schema.enum;
    } else {
      values = [schema.const];
    }
    if (schema.const !== undefined && schema.enum !== undefined) {
      values = values.filter((value) => JSON.stringify(value) === JSON.stringify(schema.const));
    }
    if (schema.type !== undefined) {
      const types = this.types(schema, path);
      values = values.filter((value) => types.some((type) => hasType(value, type)));
    }
    if (values.length === 0) {
      throw invalidSchema(this.param, [...path, keywords.includes('enum') ? 'enum' : 'const'], 'no value is allowed by both the values and the type.');
    }
    const alternatives = [...new Set(values.map((value) => gbnfLiteral(JSON.stringify(value))))];
    return this.builder.add(hint(path), alternatives.join(' | '));
  }

  /** The schema's types: `type` (a name or a list), else those its keywords imply, else any; `nullable` adds null. */
  private types(schema: SchemaObject, path: SchemaPath): string[] {
    let types: string[];
    if (schema.type !== undefined) {
      const list = typeof schema.type === 'string' ? [schema.type] : schema.type;
      if (!Array.isArray(list) || list.length === 0 || list.some((type) => typeof type !== 'string' || !TYPES.includes(type))) {
        throw invalidSchema(this.param, [...path, 'type'], `type must be one of ${TYPES.join(', ')}, or a non-empty list of them.`);
      }
      types = [...new Set(list as string[])];
    } else {
      types = Object.entries(KEYWORDS_OF_TYPE)
        .filter(([, typeKeywords]) => typeKeywords.some((keyword) => schema[keyword] !== undefined))
        .map(([type]) => type);
      if (types.length === 0) types = ['any'];
    }
    if (schema.nullable === true && !types.includes('null') && !types.includes('any')) types.push('null');
    if (types.includes('number')) types = types.filter((type) => type !== 'integer');
    return types;
  }

  private typed(type: string, schema: SchemaObject, path: SchemaPath): string {
    switch (type) {
      case 'null':
        return '"null"';
      case 'boolean':
        return jsonBoolean(this.builder);
      case 'string':
        return stringRule(this.builder, schema, path, this.param);
      case 'integer':
      case 'number':
        return numericRule(this.builder, schema, type === 'integer', path, this.param);
      case 'object':
        return this.object(schema, path);
      case 'array':
        return this.array(schema, path);
      default:
        return jsonValue(this.builder);
    }
  }

  private object(schema: SchemaObject, path: SchemaPath): string {
    const properties = schema.properties ?? {};
    if (!isObject(properties)) throw invalidSchema(this.param, [...path, 'properties'], 'properties must be an object.');
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((name) => typeof name !== 'string') || new Set(required).size !== required.length) {
      throw invalidSchema(this.param, [...path, 'required'], 'required must be an array of distinct strings.');
    }
    const additional = schema.additionalProperties;
    if (additional !== undefined && typeof additional !== 'boolean' && !isObject(additional)) {
      throw invalidSchema(this.param, [...path, 'additionalProperties'], 'additionalProperties must be a boolean or a schema.');
    }
    const additionalValue = () =>
      isObject(additional) ? this.visit(additional, [...path, 'additionalProperties']) : jsonValue(this.builder);
    const member = (name: string, value: string) => `${gbnfLiteral(`${JSON.stringify(name)}:`)} ${value}`;
    const requiredMembers: string[] = [];
    const optionalMembers: string[] = [];
    for (const [name, propertySchema] of Object.entries(properties)) {
      const value = this.visit(propertySchema, [...path, 'properties', name]);
      (required.includes(name) ? requiredMembers : optionalMembers).push(member(name, value));
    }
    for (const name of required as string[]) {
      if (Object.hasOwn(properties, name)) continue;
      if (additional === false) {
        throw invalidSchema(this.param, [...path, 'required'], `'${name}' is required, but it is not in properties and additionalProperties is false.`);
      }
      requiredMembers.push(member(name, additionalValue()));
    }
    if (requiredMembers.length === 0 && optionalMembers.length === 0) {
      if (additional === false) return '"{}"';
      if (!isObject(additional)) return jsonObject(this.builder);
      const pair = this.builder.add('object-member', `${jsonString(this.builder)} ":" ${additionalValue()}`);
      return this.builder.add(hint(path), `"{" (${pair} ("," ${pair})*)? "}"`);
    }
    const optionalTail = (from: number) => optionalMembers.slice(from).map((entry) => `("," ${entry})?`).join(' ');
    let body: string;
    if (requiredMembers.length > 0) {
      body = [`"{"`, requiredMembers.join(' "," '), optionalTail(0), `"}"`].filter((part) => part.length > 0).join(' ');
    } else {
      const starts = optionalMembers.map((entry, index) => `${entry} ${optionalTail(index + 1)}`.trim());
      body = `"{" (${starts.join(' | ')})? "}"`;
    }
    return this.builder.add(hint(path), body);
  }

  private array(schema: SchemaObject, path: SchemaPath): string {
    const min = count(schema, 'minItems', path, this.param) ?? 0;
    const max = count(schema, 'maxItems', path, this.param) ?? Infinity;
    if (max < min) throw invalidSchema(this.param, [...path, 'maxItems'], 'maxItems is below minItems.');
    const items = schema.items;
    const prefixKeyword = schema.prefixItems !== undefined ? 'prefixItems' : Array.isArray(items) ? 'items' : null;
    const prefix = prefixKeyword === null ? [] : schema[prefixKeyword];
    if (!Array.isArray(prefix)) throw invalidSchema(this.param, [...path, 'prefixItems'], 'prefixItems must be an array of schemas.');
    const restKeyword = prefixKeyword === 'items' ? 'additionalItems' : 'items';
    const rest = schema[restKeyword] ?? true;
    if (prefix.length > 0) {
      // Tuple items may be left out at the end; extra items are generated only as far as minItems needs them.
      const kept = Math.min(prefix.length, max);
      const extra = Math.max(0, min - kept);
      if (extra > 0 && rest === false) {
        throw invalidSchema(this.param, [...path, 'minItems'], `minItems needs more items than ${prefixKeyword} allows.`);
      }
      const parts = prefix.slice(0, kept).map((item, index) => this.visit(item, [...path, prefixKeyword!, index]));
      for (let index = 0; index < extra; index++) parts.push(this.visit(rest, [...path, restKeyword]));
      return this.builder.add(hint(path), parts.length === 0 ? '"[]"' : `"[" ${parts.join(' "," ')} "]"`);
    }
    if (rest === false || max === 0) {
      if (min > 0) throw invalidSchema(this.param, [...path, 'minItems'], 'minItems needs items that items: false forbids.');
      return '"[]"';
    }
    const item = this.visit(rest, [...path, restKeyword]);
    const tail = (from: number) =>
      max === Infinity ? ` ("," ${item}){${from},}` : max > 1 ? ` ("," ${item}){${from},${max - 1}}` : '';
    const body = min === 0 ? `(${item}${tail(0)})?` : `${item}${tail(min - 1)}`;
    return this.builder.add(hint(path), `"[" ${body} "]"`);
  }
}

function isObject(value: JsonValue | undefined): value is SchemaObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasType(value: JsonValue, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      return true;
  }
}

/** A JSON pointer token: percent-decoded (it sits in a URI fragment), then `~1` -> `/` and `~0` -> `~`. */
function decodePointerToken(token: string): string {
  let decoded = token;
  try {
    decoded = decodeURIComponent(token);
  } catch {
    // Not percent-encoded after all.
  }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

function hint(path: SchemaPath): string {
  for (let index = path.length - 1; index >= 0; index--) {
    const part = path[index];
    if (typeof part === 'string' && !['properties', 'items', 'anyOf', 'oneOf', '$defs', 'definitions'].includes(part)) return part;
  }
  return 'schema';
}

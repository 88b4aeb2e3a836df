/**
 * The JSON Schema keywords, as constrained decoding sees them. Every keyword of a schema is in one of these lists or
 * the schema is refused: a keyword is never silently ignored.
 */

/** Keywords that constrain the output and are enforced by the grammar (with limits the converter checks). */
export const ENFORCED_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'additionalItems',
  'minItems',
  'maxItems',
  'uniqueItems',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'nullable',
]);

/** Keywords that do not constrain the output (annotations, and the homes of definitions). */
export const ANNOTATION_KEYWORDS = new Set([
  '$schema',
  '$id',
  '$comment',
  '$defs',
  'definitions',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

/** Keywords refused with a reason (everything else unknown is refused as unknown). */
export const REFUSED_KEYWORDS: Record<string, string> = {
  not: 'negation cannot be enforced by a grammar.',
  if: 'conditional schemas (if/then/else) cannot be enforced by a grammar.',
  then: 'conditional schemas (if/then/else) cannot be enforced by a grammar.',
  else: 'conditional schemas (if/then/else) cannot be enforced by a grammar.',
  patternProperties: 'property names by pattern are not supported.',
  propertyNames: 'constraints on property names are not supported.',
  minProperties: 'property counts are not supported.',
  maxProperties: 'property counts are not supported.',
  dependentRequired: 'dependencies between properties are not supported.',
  dependentSchemas: 'dependencies between properties are not supported.',
  dependencies: 'dependencies between properties are not supported.',
  unevaluatedProperties: 'unevaluatedProperties is not supported; use additionalProperties.',
  unevaluatedItems: 'unevaluatedItems is not supported.',
  contains: 'contains/minContains/maxContains are not supported.',
  minContains: 'contains/minContains/maxContains are not supported.',
  maxContains: 'contains/minContains/maxContains are not supported.',
  multipleOf: 'multipleOf cannot be enforced by a grammar.',
  $dynamicRef: 'dynamic references are not supported; use $ref.',
  $dynamicAnchor: 'dynamic references are not supported; use $ref.',
  $recursiveRef: 'recursive references of draft 2019-09 are not supported; use $ref.',
  $recursiveAnchor: 'recursive references of draft 2019-09 are not supported; use $ref.',
  $anchor: 'anchors are not supported; use $ref with a JSON pointer.',
};

/** Keywords that make a schema without `type` describe this type. */
export const KEYWORDS_OF_TYPE: Record<string, readonly string[]> = {
  object: ['properties', 'required', 'additionalProperties'],
  array: ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems'],
  string: ['pattern', 'format', 'minLength', 'maxLength'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
};

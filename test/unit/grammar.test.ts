import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenmillError } from '../../src/core/errors.js';
import type { JsonValue } from '../../src/engine/engine.js';
import { checkGbnf } from '../../src/engine/llama/grammar/check-gbnf.js';
import { constraintToGbnf } from '../../src/engine/llama/grammar/constraint-to-gbnf.js';
import { GbnfBuilder } from '../../src/engine/llama/grammar/gbnf-builder.js';
import { integerRangeGbnf, numberRangeGbnf } from '../../src/engine/llama/grammar/integer-range.js';
import { regexToGbnf } from '../../src/engine/llama/grammar/regex-to-gbnf.js';
import { genericJsonFormat } from '../../src/engine/llama/tool-calls/generic-json-format.js';
import { schemaCorpus } from '../fixtures/schema-corpus.js';

const PARAM = 'response_format.json_schema.schema';

function schemaGrammar(schema: unknown): string {
  return constraintToGbnf({ kind: 'json-schema', schema: schema as JsonValue, param: PARAM }, [], genericJsonFormat);
}

function rejection(run: () => unknown): TokenmillError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof TokenmillError, `expected a TokenmillError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

/** The integer-range rules use only literals, classes, counts, groups and `|`: the same text is a JS regex. */
function gbnfAsRegex(gbnf: string): RegExp {
  return new RegExp(`^(?:${gbnf.replace(/"/g, '').replace(/\s+/g, '')})$`);
}

describe('checkGbnf', () => {
  test('accepts valid grammars, with comments, groups, counts and multi-line alternatives', () => {
    assert.equal(checkGbnf('root ::= "yes" | "no"'), null);
    assert.equal(checkGbnf('# a comment\nroot ::= item ("," item){0,3}\nitem ::= [a-z]+ | "\\x41" | .\n'), null);
    assert.equal(checkGbnf('root ::= (\n  "a"\n  | "b"\n) "c"?'), null);
    assert.equal(checkGbnf('root ::= "a" |'), null, 'an empty alternative is allowed, as llama.cpp allows it');
  });

  test('names the problem: undefined rule, syntax, no root, left recursion', () => {
    assert.match(checkGbnf('root ::= greeting')!, /Undefined rule identifier 'greeting'/);
    assert.match(checkGbnf('root = "a"')!, /line 1, column 6: expecting '::='/);
    assert.match(checkGbnf('root ::= "abc')!, /unexpected end of input/);
    assert.match(checkGbnf('root ::= "\\q"')!, /unknown escape/);
    assert.match(checkGbnf('root ::= [a-z')!, /character class/);
    assert.match(checkGbnf('root ::= ("a"')!, /expecting '\)'/);
    assert.match(checkGbnf('root ::= *')!, /expecting an item before/);
    assert.match(checkGbnf('item ::= "a"')!, /no 'root' rule/);
    assert.match(checkGbnf('root ::= root "a" | "b"')!, /Left recursion in rule 'root'/);
    assert.match(checkGbnf('root ::= a\na ::= b? root "x"\nb ::= "y"')!, /Left recursion/);
    assert.equal(checkGbnf('root ::= "(" root ")" | "x"'), null, 'recursion after a character is fine');
    assert.match(checkGbnf('root ::= "a\\x00"')!, /only NUL/, 'no token produces NUL');
    assert.match(checkGbnf('root ::= [^\\x01-\\U0010FFFF]')!, /only NUL/);
    assert.equal(checkGbnf('root ::= [\\x00-\\x1F] [^\\x01-\\x10]'), null);
  });
});

describe('integer and number ranges', () => {
  for (const [low, high] of [[0, 9], [18, 99], [-50, -1], [-7, 123], [15, 234], [0, 0], [5, 5], [-1000, 1000], [99, 1001]]) {
    test(`integers in [${low}, ${high}] and nothing else`, () => {
      const regex = gbnfAsRegex(integerRangeGbnf(low, high));
      for (let value = low - 120; value <= high + 120; value++) {
        assert.equal(regex.test(String(value)), value >= low && value <= high, `${value}`);
      }
      assert.equal(regex.test(`0${Math.abs(high)}`), false, 'no leading zeros');
    });
  }

  test('numbers in [-40, 60]: whole bounds, fractions inside', () => {
    const regex = gbnfAsRegex(numberRangeGbnf(-40, 60, '("\\."[0-9]{1,15})'));
    for (const text of ['-40', '-39.99', '0', '0.5', '59.999', '60', '-0.25']) assert.ok(regex.test(text), text);
    for (const text of ['-40.5', '60.1', '61', '-41', '060']) assert.equal(regex.test(text), false, text);
  });
});

describe('JSON Schema to GBNF', () => {
  test('every corpus schema becomes a grammar llama.cpp accepts', () => {
    assert.ok(schemaCorpus.length >= 25);
    for (const { name, schema } of schemaCorpus) {
      const grammar = schemaGrammar(schema);
      assert.equal(checkGbnf(grammar), null, `${name}:\n${grammar}`);
    }
  });

  test('identical subschemas share a rule; $ref targets are rules of their own', () => {
    const grammar = schemaGrammar(schemaCorpus.find((entry) => entry.name === 'defs-reference')!.schema);
    assert.equal(grammar.match(/^ref-place ::=/gm)?.length, 1);
  });

  const refused: Array<[string, unknown, string, string]> = [
    ['not', { not: { type: 'string' } }, 'unsupported_schema_keyword', `${PARAM}.not`],
    ['multipleOf inside a property', { type: 'object', properties: { n: { type: 'integer', multipleOf: 2 } } }, 'unsupported_schema_keyword', `${PARAM}.properties.n.multipleOf`],
    ['patternProperties', { type: 'object', patternProperties: { '^a': {} } }, 'unsupported_schema_keyword', `${PARAM}.patternProperties`],
    ['uniqueItems true', { type: 'array', uniqueItems: true }, 'unsupported_schema_keyword', `${PARAM}.uniqueItems`],
    ['an unknown keyword', { type: 'string', maxLenght: 3 }, 'unsupported_schema_keyword', `${PARAM}.maxLenght`],
    ['an unsupported format', { type: 'string', format: 'uri' }, 'unsupported_schema_keyword', `${PARAM}.format`],
    ['a fractional number bound', { type: 'number', minimum: 0.5 }, 'unsupported_schema_keyword', `${PARAM}.minimum`],
    ['allOf of two', { allOf: [{ type: 'object' }, { type: 'object' }] }, 'unsupported_schema_keyword', `${PARAM}.allOf`],
    ['a sibling of $ref', { $ref: '#/$defs/a', type: 'object', $defs: { a: {} } }, 'unsupported_schema_keyword', `${PARAM}.type`],
    ['a remote $ref', { $ref: 'https://example.com/schema.json' }, 'unsupported_schema_keyword', `${PARAM}.$ref`],
    ['maxLength over 1000', { type: 'string', maxLength: 5000 }, 'unsupported_schema_keyword', `${PARAM}.maxLength`],
    ['a lookahead in pattern', { type: 'string', pattern: '^(?=a)a$' }, 'unsupported_regex', `${PARAM}.pattern`],
    ['an unknown type', { type: 'strng' }, 'invalid_schema', `${PARAM}.type`],
    ['required not an array', { type: 'object', properties: {}, required: 'a' }, 'invalid_schema', `${PARAM}.required`],
    ['an unresolved $ref', { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, 'invalid_schema', `${PARAM}.properties.a.$ref`],
    ['a $ref to itself', { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/a' } } }, 'invalid_schema', PARAM],
    ['empty enum', { enum: [] }, 'invalid_schema', `${PARAM}.enum`],
    ['minimum above maximum', { type: 'integer', minimum: 5, maximum: 1 }, 'invalid_schema', `${PARAM}.maximum`],
    ['a false schema', { type: 'object', properties: { a: false }, required: ['a'] }, 'invalid_schema', `${PARAM}.properties.a`],
    ['an invalid pattern', { type: 'string', pattern: '(' }, 'invalid_regex', `${PARAM}.pattern`],
  ];
  for (const [name, schema, code, param] of refused) {
    test(`refuses ${name}: ${code} at ${param}`, () => {
      const error = rejection(() => schemaGrammar(schema));
      assert.equal(error.kind, 'invalid_request');
      assert.equal(error.code, code);
      assert.equal(error.param, param);
      const keyword = param.split('.').at(-1)!;
      if (code === 'unsupported_schema_keyword') assert.ok(error.message.includes(`'${keyword}'`), error.message);
    });
  }
});

describe('regular expressions to GBNF', () => {
  const patterns = [
    '^[A-Z]{3}-\\d{4}$',
    '(alpha|beta)[0-9]?',
    '^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|(?:02)-(?:0[1-9]|1\\d|2[0-8])))$',
    "^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$",
    '[^"\\\\]+ "quoted" \\\\ .*?',
    '\\u00e9t\\xe9|caf\\u{e9}',
  ];
  for (const target of ['text', 'json-string'] as const) {
    test(`patterns become valid grammars (${target})`, () => {
      for (const pattern of patterns) {
        const builder = new GbnfBuilder();
        const grammar = builder.build(regexToGbnf(builder, pattern, target, 'guided_regex'));
        assert.equal(checkGbnf(grammar), null, `${pattern}:\n${grammar}`);
      }
    });
  }

  test('inside a JSON string, quotes and backslashes the pattern names are escaped; broad sets leave them out', () => {
    const builder = new GbnfBuilder();
    const rule = regexToGbnf(builder, '^a"b\\\\[^x]$', 'json-string', 'p');
    const grammar = builder.build(rule);
    assert.ok(grammar.includes('"a\\\\\\"b\\\\\\\\"'), grammar);
    assert.ok(grammar.includes('"a\\\\\\"b\\\\\\\\" [ -!#-\\x5B\\x5D-wy-'), grammar);
  });

  const refused: Array<[string, string]> = [
    ['(?=a)b', 'unsupported_regex'],
    ['(a)\\1', 'unsupported_regex'],
    ['\\bword', 'unsupported_regex'],
    ['\\p{L}', 'unsupported_regex'],
    ['a{2000}', 'unsupported_regex'],
    ['a^b', 'unsupported_regex'],
    ['(ab', 'invalid_regex'],
    ['ab)', 'invalid_regex'],
    ['*a', 'invalid_regex'],
    ['[z-a]', 'invalid_regex'],
  ];
  for (const [pattern, code] of refused) {
    test(`refuses /${pattern}/ with ${code}`, () => {
      const builder = new GbnfBuilder();
      const error = rejection(() => builder.build(regexToGbnf(builder, pattern, 'text', 'guided_regex')));
      assert.equal(error.code, code);
      assert.equal(error.param, 'guided_regex');
    });
  }
});

describe('generic JSON tool-call format', () => {
  const tools = [
    { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } as JsonValue, param: 'tools[0].function' },
    { name: 'ping', description: null, parameters: null, param: 'tools[1].function' },
  ];

  test('grammars for every tool_choice are valid', () => {
    for (const choice of ['auto', 'required', { name: 'ping' }] as const) {
      for (const parallel of [true, false]) {
        const grammar = constraintToGbnf({ kind: 'tool-calls', choice, parallel, text: null }, tools, genericJsonFormat);
        assert.equal(checkGbnf(grammar), null, grammar);
      }
    }
    const withText = constraintToGbnf({ kind: 'tool-calls', choice: 'auto', parallel: false, text: { kind: 'json-object' } }, tools, genericJsonFormat);
    assert.equal(checkGbnf(withText), null, withText);
  });

  test('a tool whose parameters are not an object schema is refused at its path', () => {
    const bad = [{ ...tools[0], parameters: { type: 'string' } as JsonValue }];
    const error = rejection(() => constraintToGbnf({ kind: 'tool-calls', choice: 'required', parallel: false, text: null }, bad, genericJsonFormat));
    assert.equal(error.param, 'tools[0].function.parameters.type');
  });

  test('the reader streams calls in fragments, whatever the chunking', () => {
    const text = '[{"name":"get_weather","arguments":{"city":"Pa}ris \\"x\\""}},{"name":"ping","arguments":{}}]';
    for (const size of [1, 2, 3, 7, text.length]) {
      const reader = genericJsonFormat.createReader(true);
      const calls: Array<{ id: string; name: string; arguments: string }> = [];
      for (let index = 0; index < text.length; index += size) {
        for (const event of reader.push(text.slice(index, index + size), null)) {
          assert.equal(event.type, 'tool-call-delta');
          if (event.type !== 'tool-call-delta') continue;
          if (event.id !== undefined) calls[event.call] = { id: event.id, name: event.name!, arguments: '' };
          calls[event.call].arguments += event.arguments;
        }
      }
      assert.deepEqual(calls.map((call) => [call.name, JSON.parse(call.arguments)]), [['get_weather', { city: 'Pa}ris "x"' }], ['ping', {}]]);
      assert.match(calls[0].id, /^call_[A-Za-z0-9]{24}$/);
      assert.notEqual(calls[0].id, calls[1].id);
      assert.equal(reader.finish('stop'), 'tool_calls');
      assert.equal(reader.finish('length'), 'length');
    }
  });

  test('under auto, text that does not start with [ is text', () => {
    const reader = genericJsonFormat.createReader(false);
    assert.deepEqual(reader.push('', null), []);
    assert.deepEqual(reader.push('Hello [x]', null), [{ type: 'text-delta', text: 'Hello [x]', logprobs: null }]);
    assert.equal(reader.finish('stop'), 'stop');
  });
});

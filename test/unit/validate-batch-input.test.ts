import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateBatchInput } from '../../src/core/batches/validate-batch-input.js';

const ENDPOINT = '/v1/chat/completions';
const good = (customId: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: ENDPOINT, body: { model: 'm' }, ...extra });

test('a valid file: one line per request, bodies kept, blank lines and unknown fields ignored', () => {
  const result = validateBatchInput(Buffer.from(`${good('a')}\n\n${good('b', { extra: 1 })}\r\n`), ENDPOINT);
  assert.equal(result.errors, null);
  assert.deepEqual(result.lines, [
    { customId: 'a', body: '{"model":"m"}' },
    { customId: 'b', body: '{"model":"m"}' },
  ]);
});

const bad: Array<[string, string, string, number | null]> = [
  ['not json', 'not json', 'invalid_json_line', 1],
  ['a GET', good('a', { method: 'GET' }), 'invalid_method', 1],
  ['another endpoint', good('a', { url: '/v1/embeddings' }), 'mismatched_url', 1],
  ['no custom_id', JSON.stringify({ method: 'POST', url: ENDPOINT, body: {} }), 'missing_required_parameter', 1],
  ['no body', JSON.stringify({ custom_id: 'a', method: 'POST', url: ENDPOINT }), 'missing_required_parameter', 1],
  ['a body that is not an object', good('a', { body: [1] }), 'invalid_request', 1],
  ['a duplicate custom_id', `${good('a')}\n${good('a')}`, 'duplicate_custom_id', 2],
  ['an empty file', '\n \n', 'empty_file', null],
];

for (const [name, text, code, line] of bad) {
  test(`a bad file fails with its errors by line: ${name}`, () => {
    const result = validateBatchInput(Buffer.from(text), ENDPOINT);
    assert.deepEqual(result.lines, []);
    assert.equal(result.errors?.[0].code, code);
    assert.equal(result.errors?.[0].line, line);
  });
}

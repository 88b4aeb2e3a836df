import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenmillError, type ErrorKind } from '../../src/core/errors.js';
import type { ChoiceEvent } from '../../src/core/inference/run-choices.js';
import { AnthropicMessageCollector, AnthropicStreamEncoder, anthropicUsage, toolUseId } from '../../src/http/encoders/anthropic-messages.js';
import { mapStopReason } from '../../src/http/encoders/map-stop-reason.js';
import { errorShapeOf, mapError } from '../../src/http/errors.js';
import type { SseWriter } from '../../src/http/sse.js';

const usage = { promptTokens: 20, cachedTokens: 5, completionTokens: 3 };
const meta = { id: 'msg_1', model: 'm' };

/** Writes events into a list, as `[name, data]`. */
function recorder(): { writer: SseWriter; events: Array<[string, any]> } {
  const events: Array<[string, any]> = [];
  const writer = { event: (name: string, payload: string) => events.push([name, JSON.parse(payload)]) } as unknown as SseWriter;
  return { writer, events };
}

function encode(events: ChoiceEvent[], finish = true): Array<[string, any]> {
  const encoder = new AnthropicStreamEncoder(meta);
  const { writer, events: written } = recorder();
  for (const event of events) encoder.write(event, writer);
  if (finish) encoder.finish(writer);
  return written;
}

const processed: ChoiceEvent = { type: 'prompt-processed', promptTokens: 20, cachedTokens: 5, index: 0 };
const text = (value: string): ChoiceEvent => ({ type: 'text-delta', text: value, logprobs: null, index: 0 });

describe('mapStopReason', () => {
  const cases: Array<[Parameters<typeof mapStopReason>, string]> = [
    [['stop', undefined], 'end_turn'],
    [['stop', 'END'], 'stop_sequence'],
    [['length', undefined], 'max_tokens'],
    [['tool_calls', undefined], 'tool_use'],
  ];
  for (const [input, expected] of cases) {
    test(`${input.join(' ')} -> ${expected}`, () => assert.equal(mapStopReason(...input), expected));
  }
});

describe('anthropicUsage', () => {
  test('no breakpoint: input is what was not read from the cache', () => {
    assert.deepEqual(anthropicUsage(usage, null), { input_tokens: 15, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 5 });
  });
  test('a breakpoint: the uncached tokens before it are a cache write; the parts add up to the prompt', () => {
    const result = anthropicUsage(usage, 12);
    assert.deepEqual(result, { input_tokens: 8, output_tokens: 3, cache_creation_input_tokens: 7, cache_read_input_tokens: 5 });
    assert.equal(result.input_tokens + result.cache_creation_input_tokens + result.cache_read_input_tokens, usage.promptTokens);
  });
  test('a breakpoint inside the cached prefix writes nothing; one past the prompt is capped', () => {
    assert.equal(anthropicUsage(usage, 3).cache_creation_input_tokens, 0);
    assert.equal(anthropicUsage(usage, 99).cache_creation_input_tokens, 15);
    assert.equal(anthropicUsage(usage, 99).input_tokens, 0);
  });
});

describe('AnthropicMessageCollector', () => {
  test('text that ended by itself: one text block, end_turn', () => {
    const collector = new AnthropicMessageCollector(meta);
    for (const event of [processed, text('Hello'), text(' world'), { type: 'end', finishReason: 'stop', usage, index: 0 } as ChoiceEvent]) collector.add(event);
    const message = collector.result();
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello world' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.stop_sequence, null);
  });

  test('tool calls: tool_use blocks with toolu_ ids and parsed input; nothing else, no text block', () => {
    const collector = new AnthropicMessageCollector(meta);
    const events: ChoiceEvent[] = [
      processed,
      { type: 'tool-call-delta', call: 0, id: 'call_abc', name: 'f', arguments: '', index: 0 },
      { type: 'tool-call-delta', call: 0, arguments: '{"a":', index: 0 },
      { type: 'tool-call-delta', call: 0, arguments: '1}', index: 0 },
      { type: 'tool-call-delta', call: 1, id: 'call_def', name: 'g', arguments: '{}', index: 0 },
      { type: 'end', finishReason: 'tool_calls', usage, index: 0 },
    ];
    for (const event of events) collector.add(event);
    const message = collector.result();
    assert.deepEqual(message.content, [
      { type: 'tool_use', id: 'toolu_abc', name: 'f', input: { a: 1 } },
      { type: 'tool_use', id: 'toolu_def', name: 'g', input: {} },
    ]);
    assert.equal(message.stop_reason, 'tool_use');
  });

  test('nothing generated: empty content, as Anthropic answers max_tokens 0', () => {
    const collector = new AnthropicMessageCollector(meta);
    collector.add({ type: 'end', finishReason: 'length', usage: { ...usage, completionTokens: 0 }, index: 0 });
    assert.deepEqual(collector.result().content, []);
    assert.equal(collector.result().stop_reason, 'max_tokens');
  });

  test('toolUseId keeps the random part of the engine id', () => {
    assert.equal(toolUseId('call_XyZ'), 'toolu_XyZ');
    assert.equal(toolUseId('other'), 'toolu_other');
  });
});

describe('AnthropicStreamEncoder', () => {
  test('end_turn: the whole event sequence, with a ping after the first block starts', () => {
    const written = encode([processed, text('Hi'), text(''), { type: 'end', finishReason: 'stop', usage, index: 0 }]);
    assert.deepEqual(
      written.map(([name]) => name),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    for (const [name, data] of written) assert.equal(data.type, name);
    assert.deepEqual(written[5][1], {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { input_tokens: 15, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 5 },
    });
  });

  test("a cache breakpoint: the engine's pinned tokens become the cache write, in message_start and message_delta", () => {
    const pinned: ChoiceEvent = { ...processed, pinnedTokens: 12 } as ChoiceEvent;
    const written = encode([pinned, text('Hi'), { type: 'end', finishReason: 'length', usage, index: 0 }]);
    const expected = { input_tokens: 8, cache_creation_input_tokens: 7, cache_read_input_tokens: 5 };
    assert.deepEqual(written[0][1].message.usage, { ...expected, output_tokens: 0 });
    assert.deepEqual(written.at(-2)![1].usage, { ...expected, output_tokens: 3 });
    const collector = new AnthropicMessageCollector(meta);
    for (const event of [pinned, text('Hi'), { type: 'end', finishReason: 'length', usage, index: 0 } as ChoiceEvent]) collector.add(event);
    assert.deepEqual(collector.result().usage, { ...expected, output_tokens: 3 });
  });

  test('a stop sequence is reported in message_delta', () => {
    const written = encode([processed, text('Hi'), { type: 'end', finishReason: 'stop', stopSequence: 'END', usage, index: 0 }]);
    assert.deepEqual(written.at(-2)![1].delta, { stop_reason: 'stop_sequence', stop_sequence: 'END' });
  });

  test('text then a tool call: two blocks, each closed before the next starts', () => {
    const written = encode([
      processed,
      text('Let me check.'),
      { type: 'tool-call-delta', call: 0, id: 'call_1', name: 'f', arguments: '{"a"', index: 0 },
      { type: 'tool-call-delta', call: 0, arguments: ':1}', index: 0 },
      { type: 'end', finishReason: 'tool_calls', usage, index: 0 },
    ]);
    const summary = written.map(([name, data]) => (data.index === undefined ? name : `${name}:${data.index}`));
    assert.deepEqual(summary, [
      'message_start',
      'content_block_start:0',
      'ping',
      'content_block_delta:0',
      'content_block_stop:0',
      'content_block_start:1',
      'content_block_delta:1',
      'content_block_delta:1',
      'content_block_stop:1',
      'message_delta',
      'message_stop',
    ]);
    assert.deepEqual(written[5][1].content_block, { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} });
    assert.equal(written[6][1].delta.partial_json + written[7][1].delta.partial_json, '{"a":1}');
  });

  test('nothing generated: no content block at all', () => {
    const written = encode([processed, { type: 'end', finishReason: 'stop', usage, index: 0 }]);
    assert.deepEqual(
      written.map(([name]) => name),
      ['message_start', 'message_delta', 'message_stop'],
    );
  });

  test('an error mid-stream is an error event with the Anthropic body, and no message_stop', () => {
    const encoder = new AnthropicStreamEncoder(meta);
    const { writer, events } = recorder();
    encoder.write(processed, writer);
    encoder.write(text('Hi'), writer);
    encoder.write({ type: 'end', finishReason: 'cancelled', usage, error: new Error('x'), index: 0 }, writer);
    const mapped = mapError(new TokenmillError('timeout', 'request_timeout', 'The request exceeded its deadline.'), 'req_1', '/v1/messages');
    encoder.fail(mapped.body, writer);
    assert.deepEqual(events.at(-1), [
      'error',
      { type: 'error', error: { type: 'timeout_error', message: 'The request exceeded its deadline.' }, request_id: 'req_1' },
    ]);
    assert.ok(!events.some(([name]) => name === 'message_stop'));
  });
});

describe('errors in Anthropic shape, by route', () => {
  test('only routes under /v1/messages take it', () => {
    assert.equal(errorShapeOf('/v1/messages'), 'anthropic');
    assert.equal(errorShapeOf('/v1/messages/count_tokens'), 'anthropic');
    assert.equal(errorShapeOf('/v1/messages?beta=true'), 'anthropic');
    assert.equal(errorShapeOf('/v1/messagesx'), 'openai');
    assert.equal(errorShapeOf('/v1/chat/completions'), 'openai');
    assert.equal(errorShapeOf(undefined), 'openai');
  });

  const table: Array<[ErrorKind, number, string]> = [
    ['invalid_request', 400, 'invalid_request_error'],
    ['authentication', 401, 'authentication_error'],
    ['insufficient_quota', 402, 'billing_error'],
    ['permission', 403, 'permission_error'],
    ['not_found', 404, 'not_found_error'],
    ['payload_too_large', 413, 'request_too_large'],
    ['rate_limit', 429, 'rate_limit_error'],
    ['overloaded', 529, 'overloaded_error'],
    ['timeout', 504, 'timeout_error'],
    ['unavailable', 503, 'api_error'],
  ];
  for (const [kind, status, type] of table) {
    test(`${kind}: ${status} ${type}`, () => {
      const mapped = mapError(new TokenmillError(kind, 'c', 'Something.', { retryAfterSeconds: kind === 'overloaded' ? 2 : null }), 'req_1', '/v1/messages');
      assert.equal(mapped.status, status);
      assert.deepEqual(mapped.body, { type: 'error', error: { type, message: 'Something.' }, request_id: 'req_1' });
      if (kind === 'overloaded') assert.equal(mapped.headers['retry-after'], '2');
    });
  }

  test('the field leads the message; an unexpected error is a 500 api_error that hides its message', () => {
    const field = mapError(new TokenmillError('invalid_request', 'c', 'Must be positive.', { param: 'max_tokens' }), 'req_1', '/v1/messages');
    assert.equal((field.body as { error: { message: string } }).error.message, 'max_tokens: Must be positive.');
    const bug = mapError(new Error('secret detail'), 'req_2', '/v1/messages');
    assert.equal(bug.status, 500);
    assert.equal(bug.unexpected, true);
    assert.equal((bug.body as { error: { type: string } }).error.type, 'api_error');
    assert.ok(!JSON.stringify(bug.body).includes('secret'));
    const openai = mapError(new TokenmillError('overloaded', 'c', 'Busy.'), 'req_3', '/v1/chat/completions');
    assert.equal(openai.status, 429);
  });
});

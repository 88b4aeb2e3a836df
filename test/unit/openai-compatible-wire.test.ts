import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GenerateRequest } from '../../src/engine/engine.js';
import { ChunkDecoder } from '../../src/upstream/openai-compatible/chunk-decoder.js';
import { SseParser, UpstreamSseReader } from '../../src/upstream/read-sse.js';
import { RequestGuard } from '../../src/upstream/request-guard.js';
import { toChatBody, toCompletionBody } from '../../src/upstream/openai-compatible/request-body.js';
import { parseRetryAfter, UpstreamError } from '../../src/upstream/upstream-error.js';

const base: GenerateRequest = {
  model: 'gateway-id',
  prompt: { kind: 'text', text: 'Once' },
  sampling: { temperature: 0.5, topP: 0.9, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: new Map(), seed: null },
  maxTokens: 16,
  minTokens: 0,
  ignoreEos: false,
  stop: [],
  logprobs: null,
  echo: false,
  priority: 0,
  deadline: Infinity,
  cacheScope: null,
  cacheSalt: null,
  constraint: null,
};

test('neutral settings send only OpenAI fields (OpenAI refuses unknown ones)', () => {
  assert.deepEqual(toCompletionBody(base, 'up'), {
    model: 'up',
    prompt: 'Once',
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0.5,
    top_p: 0.9,
    max_tokens: 16,
  });
});

test("sampling extras, stops and logprobs map to OpenAI's and vLLM's names", () => {
  const body = toCompletionBody(
    {
      ...base,
      prompt: { kind: 'tokens', tokens: [1, 2] },
      sampling: { ...base.sampling, topK: 40, minP: 0.05, repetitionPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: -0.5, seed: 7, logitBias: new Map([[5, -100]]) },
      stop: ['\n'],
      logprobs: 2,
      echo: true,
      minTokens: 3,
      ignoreEos: true,
      constraint: { kind: 'regex', pattern: 'a+', param: 'guided_regex' },
    },
    'up',
  );
  assert.deepEqual(body.prompt, [1, 2]);
  assert.equal(body.top_k, 40);
  assert.equal(body.min_p, 0.05);
  assert.equal(body.repetition_penalty, 1.1);
  assert.equal(body.presence_penalty, 0.5);
  assert.equal(body.frequency_penalty, -0.5);
  assert.equal(body.seed, 7);
  assert.deepEqual(body.logit_bias, { 5: -100 });
  assert.deepEqual(body.stop, ['\n']);
  assert.equal(body.logprobs, 2);
  assert.equal(body.echo, true);
  assert.equal(body.min_tokens, 3);
  assert.equal(body.ignore_eos, true);
  assert.equal(body.guided_regex, 'a+');
});

test('chat: messages with tool calls, tools, tool_choice and a constraint', () => {
  const body = toChatBody(
    {
      ...base,
      maxTokens: null,
      logprobs: 0,
      prompt: {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'w', arguments: '{}' }] },
          { role: 'tool', content: 'sunny', toolCallId: 'c1' },
        ],
        tools: [{ name: 'w', description: null, parameters: null, param: 'tools[0].function' }],
      },
      constraint: { kind: 'tool-calls', choice: { name: 'w' }, parallel: false, text: null },
    },
    'up',
  );
  assert.equal(body.max_tokens, undefined);
  assert.equal(body.logprobs, true);
  assert.equal(body.top_logprobs, undefined);
  assert.deepEqual(body.messages, [
    { role: 'user', content: 'Weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
    { role: 'tool', content: 'sunny', tool_call_id: 'c1' },
  ]);
  assert.deepEqual(body.tools, [{ type: 'function', function: { name: 'w', parameters: { type: 'object', properties: {} } } }]);
  assert.deepEqual(body.tool_choice, { type: 'function', function: { name: 'w' } });
  assert.equal(body.parallel_tool_calls, false);
  const json = toChatBody({ ...base, prompt: { kind: 'chat', messages: [{ role: 'user', content: 'x' }] }, constraint: { kind: 'json-schema', schema: { type: 'object' }, param: 'p' } }, 'up');
  assert.deepEqual(json.response_format, { type: 'json_schema', json_schema: { name: 'response', schema: { type: 'object' } } });
  const grammar = toChatBody({ ...base, prompt: { kind: 'chat', messages: [{ role: 'user', content: 'x' }] }, constraint: { kind: 'gbnf', grammar: 'root ::= "a"', param: 'grammar' } }, 'up');
  assert.equal(grammar.guided_grammar, 'root ::= "a"');
});

test('SSE: data lines split across chunks, CRLF, comments and [DONE]', async () => {
  const encoder = new TextEncoder();
  const parts = [': ping\n\nda', 'ta: {"a":1}\r\n\r\ndata: {"b":', '2}\n\n', 'data: [DONE]\n\n'];
  const parser = new SseParser();
  const payloads: string[] = [];
  for (const part of parts) payloads.push(...parser.push(encoder.encode(part)));
  payloads.push(...parser.end());
  assert.deepEqual(payloads, ['{"a":1}', '{"b":2}', '[DONE]']);
});

test('chunks become text and tool-call deltas; the finish reason and the usage (with cached tokens) are kept', () => {
  const decoder = new ChunkDecoder();
  assert.deepEqual(decoder.decode({ choices: [{ index: 0, delta: { content: '' } }] }), []);
  assert.deepEqual(decoder.decode({ choices: [{ index: 0, delta: { content: 'Hi' } }] }), [{ type: 'text-delta', text: 'Hi', logprobs: null }]);
  assert.deepEqual(decoder.decode({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c', function: { name: 'w', arguments: '{"a"' } }] } }] }), [
    { type: 'tool-call-delta', call: 0, id: 'c', name: 'w', arguments: '{"a"' },
  ]);
  decoder.decode({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
  decoder.decode({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 2 } } });
  assert.equal(decoder.finishReason, 'tool_calls');
  assert.deepEqual(decoder.usage, { promptTokens: 9, cachedTokens: 2, completionTokens: 4 });
  assert.equal(decoder.outputCharacters, 6);
  const completion = new ChunkDecoder();
  const [event] = completion.decode({ choices: [{ index: 0, text: 'a', logprobs: { tokens: ['a'], token_logprobs: [-0.5], top_logprobs: [{ a: -0.5, b: -1 }] }, finish_reason: 'length' }] });
  assert.deepEqual(event, {
    type: 'text-delta',
    text: 'a',
    logprobs: [{ token: 'a', logprob: -0.5, bytes: [97], top: [{ token: 'a', logprob: -0.5, bytes: [97] }, { token: 'b', logprob: -1, bytes: [98] }] }],
  });
  assert.equal(completion.finishReason, 'length');
});

test('upstream errors: retryable statuses, retry-after forms, the upstream message', () => {
  for (const [status, retryable] of [[400, false], [401, false], [404, false], [408, true], [409, true], [422, false], [429, true], [500, true], [503, true]] as const) {
    assert.equal(new UpstreamError('x', { deployment: 'd', status }).retryable, retryable, String(status));
  }
  assert.equal(new UpstreamError('x', { deployment: 'd' }).retryable, true, 'no answer at all');
  assert.equal(parseRetryAfter(new Headers({ 'retry-after': '2' })), 2000);
  assert.equal(parseRetryAfter(new Headers({ 'retry-after-ms': '150', 'retry-after': '2' })), 150);
  assert.equal(parseRetryAfter(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000), 6000);
  assert.equal(parseRetryAfter(new Headers({})), null);
  assert.equal(new UpstreamError('x', { deployment: 'd', status: 400, body: '{"error":{"message":"too long"}}' }).upstreamMessage(), 'too long');
  assert.equal(new UpstreamError('x', { deployment: 'd', status: 400, body: '{"detail":"nope"}' }).upstreamMessage(), 'nope');
  assert.equal(new UpstreamError('x', { deployment: 'd', status: 502, body: '<html>' }).upstreamMessage(), null);
});

/** A body whose chunks come from `parts`, recording whether it was read to its end or closed early. */
function scriptedBody(parts: string[]) {
  const encoder = new TextEncoder();
  const state = { read: 0, returned: false };
  const body: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => (state.read < parts.length ? { value: encoder.encode(parts[state.read++]), done: false } : { value: undefined, done: true }),
      return: async () => {
        state.returned = true;
        return { value: undefined, done: true };
      },
    }),
  };
  return { body, state };
}

test('SSE reader: the payloads of each chunk that completes one; handOver reads the rest in the background; close aborts', async () => {
  const guards: RequestGuard[] = [];
  const open = () => {
    const guard = new RequestGuard(new AbortController().signal, 10_000, 10_000);
    guards.push(guard);
    return guard;
  };
  const { body, state } = scriptedBody([': ping\n\n', 'data: {"a":1}\n\ndata: {"b"', ':2}\n\ndata: [DONE]\n\n', 'tail', '']);
  const guard = open();
  const reader = new UpstreamSseReader(body, guard);
  assert.deepEqual(await reader.next(), ['{"a":1}'], 'a chunk with only a comment completes nothing and is skipped');
  assert.deepEqual(await reader.next(), ['{"b":2}', '[DONE]']);
  reader.handOver();
  assert.equal(await reader.next(), null, 'nothing more is read once handed over');
  await reader.close();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(state.read, 5, 'the body was read to its end in the background');
  assert.equal(state.returned, false, 'a body read to its end is not aborted');
  assert.equal(guard.aborted, false);

  const unfinished = scriptedBody(['data: {"a":1}\n\n', 'data: {"b":2}\n\n']);
  const early = new UpstreamSseReader(unfinished.body, open());
  assert.deepEqual(await early.next(), ['{"a":1}']);
  await early.close();
  assert.equal(unfinished.state.returned, true, 'a body left unfinished is closed (the request aborted)');
  assert.equal(await early.next(), null);

  const cut = scriptedBody(['data: {"a":1}\n\ndata: {"b":2}']);
  const ending = new UpstreamSseReader(cut.body, open());
  assert.deepEqual(await ending.next(), ['{"a":1}']);
  assert.deepEqual(await ending.next(), ['{"b":2}'], 'an unterminated last event still counts at the end of the body');
  assert.equal(await ending.next(), null);
  for (const each of guards) each.dispose(false);
});

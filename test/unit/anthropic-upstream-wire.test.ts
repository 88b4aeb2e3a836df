import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenmillError } from '../../src/core/errors.js';
import type { EngineEvent, GenerateRequest, OutputConstraint, Prompt } from '../../src/engine/engine.js';
import { anthropicDeploymentSchema } from '../../src/config/schema.js';
import { mapStopReason, MessageStreamDecoder, StreamErrorEvent, statusOfErrorType, type UpstreamStreamEvent } from '../../src/upstream/anthropic/message-stream-decoder.js';
import { fromToolUseId, toMessagesBody, toToolUseId } from '../../src/upstream/anthropic/request-body.js';

const options = { model: 'claude-x', defaultMaxTokens: 1000, contextSize: 8192 };
const chat = (messages: Extract<Prompt, { kind: 'chat' }>['messages'], extra: Partial<Extract<Prompt, { kind: 'chat' }>> = {}): Prompt => ({ kind: 'chat', messages, ...extra });

const base: GenerateRequest = {
  model: 'gateway-id',
  prompt: chat([{ role: 'user', content: 'Hi' }]),
  sampling: { temperature: 0.5, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: new Map(), seed: 7 },
  maxTokens: 16,
  minTokens: 0,
  ignoreEos: false,
  stop: [],
  logprobs: null,
  echo: false,
  priority: 0,
  deadline: Infinity,
  cacheScope: 'account-1',
  cacheSalt: 'salt',
  constraint: null,
};

const weatherTool = { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, param: 'tools[0]' };

test('a plain chat: only Anthropic fields, always streamed; seed, cache scope and salt are not sent', () => {
  assert.deepEqual(toMessagesBody(base, options), {
    model: 'claude-x',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
    max_tokens: 16,
    stream: true,
    temperature: 0.5,
  });
});

test('system messages become system; sampling and stops map to Anthropic names', () => {
  const body = toMessagesBody(
    {
      ...base,
      prompt: chat([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ]),
      sampling: { ...base.sampling, topP: 0.9, topK: 40 },
      stop: ['END', '\n\n'],
    },
    options,
  );
  assert.deepEqual(body.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(body.top_p, 0.9);
  assert.equal(body.top_k, 40);
  assert.deepEqual(body.stop_sequences, ['END', '\n\n']);
});

test('tool calls become tool_use blocks (parsed input), tool messages tool_result blocks; same-role turns merge; ids map', () => {
  const body = toMessagesBody(
    {
      ...base,
      prompt: chat(
        [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: 'Let me look.',
            toolCalls: [
              { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
              { id: 'toolu_2', name: 'get_weather', arguments: '' },
            ],
          },
          { role: 'tool', content: 'Sunny', toolCallId: 'call_1' },
          { role: 'tool', content: 'Rain', toolCallId: 'toolu_2' },
          { role: 'user', content: 'Thanks' },
        ],
        { tools: [weatherTool] },
      ),
    },
    options,
  );
  assert.deepEqual(body.messages, [
    { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }] },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me look.' },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny' },
        { type: 'tool_result', tool_use_id: 'toolu_2', content: 'Rain' },
        { type: 'text', text: 'Thanks' },
      ],
    },
  ]);
  // Without a tool-calls constraint the prompt's tools are still defined (Anthropic wants them), with tool_choice none.
  assert.equal(body.tools?.length, 1);
  assert.deepEqual(body.tool_choice, { type: 'none' });
  assert.equal(toToolUseId('call_abc'), 'toolu_abc');
  assert.equal(fromToolUseId('toolu_abc'), 'call_abc');
  assert.equal(fromToolUseId(toToolUseId('call_abc')), 'call_abc');
  assert.equal(toToolUseId('other'), 'other');
});

test('tool_choice per constraint: auto, required -> any, a name -> tool; disable_parallel_tool_use when not parallel', () => {
  const cases: Array<[Extract<OutputConstraint, { kind: 'tool-calls' }>, unknown]> = [
    [{ kind: 'tool-calls', choice: 'auto', parallel: true, text: null }, { type: 'auto' }],
    [{ kind: 'tool-calls', choice: 'required', parallel: true, text: null }, { type: 'any' }],
    [{ kind: 'tool-calls', choice: 'required', parallel: false, text: null }, { type: 'any', disable_parallel_tool_use: true }],
    [{ kind: 'tool-calls', choice: { name: 'get_weather' }, parallel: false, text: null }, { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true }],
  ];
  for (const [constraint, expected] of cases) {
    const body = toMessagesBody({ ...base, prompt: chat([{ role: 'user', content: 'Hi' }], { tools: [weatherTool] }), constraint }, options);
    assert.deepEqual(body.tool_choice, expected);
    assert.deepEqual(body.tools, [{ name: 'get_weather', description: 'Weather', input_schema: weatherTool.parameters }]);
  }
  const noArguments = toMessagesBody(
    {
      ...base,
      prompt: chat([{ role: 'user', content: 'Hi' }], { tools: [{ name: 'ping', description: null, parameters: null, param: 'tools[0]' }] }),
      constraint: cases[0][0],
    },
    options,
  );
  assert.deepEqual(noArguments.tools, [{ name: 'ping', input_schema: { type: 'object', properties: {} } }]);
});

test('max_tokens: the request, else the default capped by what the prompt leaves of the context; 0 is refused', () => {
  assert.equal(toMessagesBody({ ...base, maxTokens: null }, options).max_tokens, 1000);
  assert.equal(toMessagesBody({ ...base, maxTokens: null }, { ...options, contextSize: 100 }).max_tokens, 100 - 9);
  assert.equal(toMessagesBody({ ...base, maxTokens: null }, { ...options, contextSize: 5 }).max_tokens, 1);
  assert.throws(() => toMessagesBody({ ...base, maxTokens: 0 }, options), (error: TokenmillError) => error.param === 'max_tokens');
});

test('a cache pin becomes cache_control on the last block of the pinned prefix (1h for long pins)', () => {
  const messages = [
    { role: 'system' as const, content: 'Long system prompt' },
    { role: 'user' as const, content: 'First' },
    { role: 'assistant' as const, content: 'Answer' },
    { role: 'user' as const, content: 'Second' },
  ];
  const pinned = toMessagesBody({ ...base, prompt: chat(messages), cachePin: { prefix: chat(messages.slice(0, 2)), ttlMs: 300_000 } }, options);
  assert.deepEqual(pinned.messages[0].content, [{ type: 'text', text: 'First', cache_control: { type: 'ephemeral' } }]);
  assert.equal(JSON.stringify(pinned.system).includes('cache_control'), false);
  const systemOnly = toMessagesBody({ ...base, prompt: chat(messages), cachePin: { prefix: chat(messages.slice(0, 1)), ttlMs: 3_600_000 } }, options);
  assert.deepEqual(systemOnly.system, [{ type: 'text', text: 'Long system prompt', cache_control: { type: 'ephemeral', ttl: '1h' } }]);
});

test('a prefill (final assistant turn) is sent last, without trailing whitespace', () => {
  const body = toMessagesBody(
    {
      ...base,
      prompt: chat(
        [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Well, ' },
        ],
        { continueFinal: true },
      ),
    },
    options,
  );
  assert.deepEqual(body.messages.at(-1), { role: 'assistant', content: [{ type: 'text', text: 'Well,' }] });
});

test('empty messages are left out (Anthropic refuses empty text blocks); the conversation starts with a user turn', () => {
  const body = toMessagesBody(
    {
      ...base,
      prompt: chat([
        { role: 'system', content: '' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: '' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: '' },
      ]),
    },
    options,
  );
  assert.equal(body.system, undefined);
  assert.deepEqual(body.messages, [
    { role: 'user', content: [{ type: 'text', text: '' }] },
    { role: 'assistant', content: [{ type: 'text', text: 'Hello!' }] },
    { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
  ]);
});

test('what Anthropic cannot do is an invalid request naming the parameter', () => {
  const refused: Array<[Partial<GenerateRequest>, string]> = [
    [{ prompt: { kind: 'text', text: 'Once' } }, 'prompt'],
    [{ prompt: { kind: 'tokens', tokens: [1, 2] } }, 'prompt'],
    [{ logprobs: 2 }, 'logprobs'],
    [{ echo: true }, 'echo'],
    [{ sampling: { ...base.sampling, presencePenalty: 0.5 } }, 'presence_penalty'],
    [{ sampling: { ...base.sampling, frequencyPenalty: 0.5 } }, 'frequency_penalty'],
    [{ sampling: { ...base.sampling, repetitionPenalty: 1.1 } }, 'repetition_penalty'],
    [{ sampling: { ...base.sampling, minP: 0.1 } }, 'min_p'],
    [{ sampling: { ...base.sampling, logitBias: new Map([[1, -100]]) } }, 'logit_bias'],
    [{ sampling: { ...base.sampling, temperature: 1.5 } }, 'temperature'],
    [{ minTokens: 2 }, 'min_tokens'],
    [{ ignoreEos: true }, 'ignore_eos'],
    [{ constraint: { kind: 'json-object' } }, 'response_format'],
    [{ constraint: { kind: 'json-schema', schema: { type: 'object' }, param: 'response_format.json_schema.schema' } }, 'response_format.json_schema.schema'],
    [{ constraint: { kind: 'regex', pattern: 'a+', param: 'guided_regex' } }, 'guided_regex'],
    [{ constraint: { kind: 'choice', choices: ['a'], param: 'guided_choice' } }, 'guided_choice'],
    [{ constraint: { kind: 'gbnf', grammar: 'root ::= "a"', param: 'grammar' } }, 'grammar'],
    [
      {
        prompt: chat([{ role: 'user', content: 'Hi' }], { tools: [weatherTool] }),
        constraint: { kind: 'tool-calls', choice: 'auto', parallel: true, text: { kind: 'regex', pattern: 'a', param: 'guided_regex' } },
      },
      'guided_regex',
    ],
    [
      {
        prompt: chat([{ role: 'user', content: 'Hi' }], { tools: [{ ...weatherTool, parameters: { type: 'string' } }] }),
        constraint: { kind: 'tool-calls', choice: 'auto', parallel: true, text: null },
      },
      'tools[0]',
    ],
    [
      {
        prompt: chat([
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'f', arguments: '[1]' }] },
        ]),
      },
      'messages[1].tool_calls[0].function.arguments',
    ],
  ];
  for (const [change, param] of refused) {
    assert.throws(
      () => toMessagesBody({ ...base, ...change }, options),
      (error: unknown) => error instanceof TokenmillError && error.kind === 'invalid_request' && error.param === param,
      param,
    );
  }
});

/** Anthropic's stream for a text block then a tool call, with cache reads and writes. */
const stream: UpstreamStreamEvent[] = [
  {
    type: 'message_start',
    message: {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 1, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
    },
  },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'ping' },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me check.' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: {} } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city": ' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } },
  { type: 'content_block_stop', index: 1 },
  { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_10', name: 'ping', input: {} } },
  { type: 'content_block_stop', index: 2 },
  { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 42 } },
  { type: 'message_stop' },
];

test('the decoder: text deltas, tool calls numbered among themselves with ids mapped, usage with cache reads and writes', () => {
  const decoder = new MessageStreamDecoder();
  const events: EngineEvent[] = stream.flatMap((event) => decoder.decode(event));
  assert.deepEqual(events, [
    { type: 'text-delta', text: 'Let me check.', logprobs: null },
    { type: 'tool-call-delta', call: 0, id: 'call_9', name: 'get_weather', arguments: '' },
    { type: 'tool-call-delta', call: 0, arguments: '{"city": ' },
    { type: 'tool-call-delta', call: 0, arguments: '"Paris"}' },
    { type: 'tool-call-delta', call: 1, id: 'call_10', name: 'ping', arguments: '' },
    { type: 'tool-call-delta', call: 1, arguments: '{}' },
  ]);
  assert.equal(decoder.finishReason, 'tool_calls');
  assert.equal(decoder.stopped, true);
  assert.deepEqual(decoder.usage, { promptTokens: 130, cachedTokens: 100, completionTokens: 42, cacheWriteTokens: 20 });
  assert.deepEqual(decoder.promptUsage, { promptTokens: 130, cachedTokens: 100, cacheWriteTokens: 20 });
});

test('the decoder: stop sequence, unknown deltas skipped, no usage without message_start, error events throw', () => {
  const decoder = new MessageStreamDecoder();
  assert.equal(decoder.usage, null);
  assert.deepEqual(decoder.decode({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta' } }), []);
  decoder.decode({ type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: 'END' }, usage: { output_tokens: 3 } });
  assert.equal(decoder.finishReason, 'stop');
  assert.equal(decoder.stopSequence, 'END');
  assert.equal(decoder.usage, null);
  assert.throws(
    () => decoder.decode({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: 'r' }),
    (error: unknown) => error instanceof StreamErrorEvent && error.errorType === 'overloaded_error',
  );
});

test('stop reasons and error types map to finish reasons and statuses', () => {
  assert.deepEqual(
    ['end_turn', 'stop_sequence', 'max_tokens', 'tool_use', 'refusal', 'pause_turn', 'model_context_window_exceeded'].map(mapStopReason),
    ['stop', 'stop', 'length', 'tool_calls', 'stop', 'stop', 'length'],
  );
  assert.deepEqual(
    ['overloaded_error', 'rate_limit_error', 'api_error', 'invalid_request_error', 'authentication_error', 'something_new'].map(statusOfErrorType),
    [529, 429, 500, 400, 401, 500],
  );
});

test('the deployment schema: defaults, and a base_url with /v1 is refused', () => {
  const parsed = anthropicDeploymentSchema.parse({ kind: 'anthropic', base_url: 'https://api.anthropic.com', model: 'claude-x' });
  assert.equal(parsed.anthropic_version, '2023-06-01');
  assert.equal(parsed.default_max_tokens, 4096);
  assert.equal(parsed.api_key, null);
  assert.equal(anthropicDeploymentSchema.safeParse({ kind: 'anthropic', base_url: 'https://api.anthropic.com/v1', model: 'claude-x' }).success, false);
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { modelsDir, startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/**
 * The Anthropic Messages API, driven by the official `@anthropic-ai/sdk` client (raw fetch only for malformed input
 * and the exact wire format). stories-260k never ends a story by itself, so greedy output runs to max_tokens;
 * `end_turn` is covered by the encoder's unit tests.
 */
const PROMPT: Anthropic.MessageParam[] = [{ role: 'user', content: 'Once upon a time' }];
/**
 * Greedy sampling. This SDK's types no longer list temperature (newer Claude models fix it), but the API takes
 * temperature, top_p and top_k, and so does Tokenmill; spread as an `object` they pass the type check.
 */
const GREEDY: object = { temperature: 0 };

const weather: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The weather forecast for a city.',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
    required: ['city', 'days'],
    additionalProperties: false,
  },
};
const ping: Anthropic.Tool = { name: 'ping', input_schema: { type: 'object', properties: {}, additionalProperties: false } };
const ASK_WEATHER: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

/** The prompt's whole size in Anthropic's usage: the three parts add up to what the engine read. */
const promptSize = (usage: Anthropic.Usage) => usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0);

function assertWeatherInput(input: unknown): void {
  const value = input as { city: string; days: number };
  assert.ok(['Paris', 'Rome', 'Oslo'].includes(value.city), JSON.stringify(input));
  assert.ok(Number.isInteger(value.days) && value.days >= 1 && value.days <= 7, JSON.stringify(input));
  assert.deepEqual(Object.keys(value).sort(), ['city', 'days']);
}

/** A system prompt no earlier request has seen, long enough to be worth caching. */
const freshSystem = () => `System ${Math.random()}: ${'Once upon a time there was a cat. '.repeat(12)}`;

describe('POST /v1/messages (auth off)', () => {
  let server: TestServer;
  let client: Anthropic;

  const greedy = (maxTokens: number, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) =>
    client.messages.create({ model: STORIES, messages: PROMPT, max_tokens: maxTokens, ...GREEDY, ...extra });

  before(async () => {
    server = await startTestServer();
    client = new Anthropic({ baseURL: server.url, apiKey: 'test-key', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
  });

  test('count_tokens equals input_tokens of a real call with nothing cached', async () => {
    // The first request to this model in the file: no sequence holds a prefix yet.
    const params = { model: TINY_RANDOM, messages: [{ role: 'user' as const, content: 'Count me, please.' }], system: 'Be brief.' };
    const counted = await client.messages.countTokens(params);
    const message = await client.messages.create({ ...params, max_tokens: 2, ...GREEDY });
    assert.equal(message.usage.cache_read_input_tokens, 0);
    assert.equal(message.usage.cache_creation_input_tokens, 0);
    assert.equal(counted.input_tokens, message.usage.input_tokens);
    assert.ok(counted.input_tokens > 0);
  });

  test('plain: content, stop_reason max_tokens, usage, msg_ id and request-id', async () => {
    const { data, response } = await client.messages
      .create({ model: STORIES, messages: PROMPT, max_tokens: 8, metadata: { user_id: 'user-1' }, ...({ temperature: 0, top_p: 0.9, top_k: 40 } as object) })
      .withResponse();
    const requestId = response.headers.get('request-id');
    assert.match(requestId ?? '', /^req_[0-9a-f]+$/);
    assert.equal(response.headers.get('x-request-id'), requestId);
    assert.equal((data as { _request_id?: string })._request_id, requestId);
    assert.match(data.id, /^msg_[0-9a-f]+$/);
    assert.equal(data.type, 'message');
    assert.equal(data.role, 'assistant');
    assert.equal(data.model, STORIES);
    assert.equal(data.stop_reason, 'max_tokens');
    assert.equal(data.stop_sequence, null);
    assert.equal(data.content.length, 1);
    const [block] = data.content;
    assert.equal(block.type, 'text');
    assert.ok(block.type === 'text' && block.text.length > 0);
    assert.equal(data.usage.output_tokens, 8);
    assert.equal(data.usage.cache_creation_input_tokens, 0);
    assert.ok(data.usage.input_tokens >= 1);
    assert.ok(promptSize(data.usage) > 5);
  });

  test('system as a string and as text blocks render the same prompt', async () => {
    const none = await greedy(4);
    const asString = await greedy(4, { system: 'You tell stories about cats.' });
    const asBlocks = await greedy(4, { system: [{ type: 'text', text: 'You tell stories about cats.' }] });
    assert.equal(promptSize(asString.usage), promptSize(asBlocks.usage));
    assert.deepEqual(asString.content, asBlocks.content);
    assert.ok(promptSize(asString.usage) > promptSize(none.usage));
  });

  test('a final assistant message is a prefill: the answer continues it', async () => {
    const whole = (await greedy(12)).content[0] as Anthropic.TextBlock;
    const prefill = whole.text.split(' ').slice(0, 3).join(' ');
    assert.ok(prefill.length > 3, whole.text);
    const messages: Anthropic.MessageParam[] = [...PROMPT, { role: 'assistant', content: prefill }];
    const continued = await greedy(5, { messages });
    const text = (continued.content[0] as Anthropic.TextBlock).text;
    assert.ok(text.length > 0);
    assert.ok(whole.text.startsWith(prefill + text), `${JSON.stringify(prefill)} + ${JSON.stringify(text)} continues ${JSON.stringify(whole.text)}`);
    const counted = await client.messages.countTokens({ model: STORIES, messages });
    assert.equal(counted.input_tokens, promptSize(continued.usage));
  });

  test('stop_sequences: stop_reason stop_sequence, the matched sequence, the text cut before it', async () => {
    const full = (await greedy(40)).content[0] as Anthropic.TextBlock;
    const stop = full.text.slice(15, 21);
    assert.equal(stop.length, 6);
    const expected = full.text.slice(0, full.text.indexOf(stop));
    const stopped = await greedy(40, { stop_sequences: ['never appears here', stop] });
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, stop);
    assert.equal((stopped.content[0] as Anthropic.TextBlock).text, expected);
    assert.ok(stopped.usage.output_tokens < 40);

    const streamed = await client.messages.stream({ model: STORIES, messages: PROMPT, max_tokens: 40, ...GREEDY, stop_sequences: [stop] }).finalMessage();
    assert.equal(streamed.stop_reason, 'stop_sequence');
    assert.equal(streamed.stop_sequence, stop);
    assert.equal((streamed.content[0] as Anthropic.TextBlock).text, expected);
  });

  test('streamed: message_start, content_block_start, deltas, content_block_stop, message_delta, message_stop', async () => {
    const whole = await greedy(10);
    const stream = client.messages.stream({ model: STORIES, messages: PROMPT, max_tokens: 10, ...GREEDY });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    const final = await stream.finalMessage();
    const deltas = types.length - 5;
    assert.ok(deltas >= 1, types.join());
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      ...Array<string>(deltas).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    assert.equal(text, (whole.content[0] as Anthropic.TextBlock).text, 'greedy: streamed and whole agree');
    assert.deepEqual(final.content, whole.content);
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, 10);
    assert.equal(promptSize(final.usage), promptSize(whole.usage));
    assert.match(final.id, /^msg_/);
  });

  test('the wire: named events whose name is the data type, a ping after the first block starts', async () => {
    const response = await rawRequest(server.url, 'POST', '/v1/messages', { model: STORIES, messages: PROMPT, max_tokens: 3, stream: true }, {
      'anthropic-version': '2023-06-01',
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(response.headers.get('request-id') ?? '', /^req_/);
    const frames = (response.body as string).trim().split('\n\n');
    const events = frames.map((frame) => {
      const match = /^event: (\w+)\ndata: (.*)$/s.exec(frame);
      assert.ok(match, `a named event: ${frame}`);
      const data = JSON.parse(match[2]);
      assert.equal(data.type, match[1]);
      return data;
    });
    assert.deepEqual(events.slice(0, 3).map((event) => event.type), ['message_start', 'content_block_start', 'ping']);
    assert.deepEqual(events[0].message.content, []);
    assert.equal(events[0].message.stop_reason, null);
    assert.equal(events.at(-2).delta.stop_reason, 'max_tokens');
    assert.equal(events.at(-2).usage.output_tokens, 3);
    assert.deepEqual(events.at(-1), { type: 'message_stop' });
  });

  test("tools: tool_choice any gives a tool_use block with parsed input and stop_reason tool_use", async () => {
    const message = await client.messages.create({
      model: STORIES,
      messages: ASK_WEATHER,
      tools: [weather, ping],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      max_tokens: 200,
      ...GREEDY,
    });
    assert.equal(message.stop_reason, 'tool_use');
    const uses = message.content.filter((block) => block.type === 'tool_use');
    assert.equal(uses.length, 1, JSON.stringify(message.content));
    const [use] = uses as Anthropic.ToolUseBlock[];
    assert.match(use.id, /^toolu_[A-Za-z0-9]+$/);
    assert.ok(['get_weather', 'ping'].includes(use.name));
    if (use.name === 'ping') assert.deepEqual(use.input, {});
    else assertWeatherInput(use.input);
  });

  test('tools: tool_choice tool names the tool; streamed input_json_delta assembles to the same input', async () => {
    const params = {
      model: STORIES,
      messages: ASK_WEATHER,
      tools: [weather, ping],
      tool_choice: { type: 'tool' as const, name: 'get_weather', disable_parallel_tool_use: true },
      max_tokens: 200,
      ...GREEDY,
    };
    const whole = await client.messages.create(params);
    assert.equal(whole.stop_reason, 'tool_use');
    const use = whole.content.find((block) => block.type === 'tool_use') as Anthropic.ToolUseBlock;
    assert.equal(use.name, 'get_weather');
    assertWeatherInput(use.input);

    const stream = client.messages.stream(params);
    let partial = '';
    const starts: Anthropic.ContentBlockStartEvent[] = [];
    for await (const event of stream) {
      if (event.type === 'content_block_start') starts.push(event);
      if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') partial += event.delta.partial_json;
    }
    const final = await stream.finalMessage();
    assert.equal(starts.length, 1);
    assert.equal(starts[0].content_block.type, 'tool_use');
    assert.deepEqual(JSON.parse(partial), use.input);
    assert.equal(final.stop_reason, 'tool_use');
    const streamedUse = final.content[0] as Anthropic.ToolUseBlock;
    assert.equal(streamedUse.name, 'get_weather');
    assert.deepEqual(streamedUse.input, use.input);
  });

  test('parallel tool use: streamed blocks open and close in turn and assemble to the whole answer', async () => {
    const params = { model: STORIES, messages: ASK_WEATHER, tools: [weather, ping], tool_choice: { type: 'any' as const }, max_tokens: 600, ...GREEDY };
    const whole = await client.messages.create(params);
    assert.equal(whole.stop_reason, 'tool_use');
    assert.ok(whole.content.length > 1, 'greedy makes several calls');
    const stream = client.messages.stream(params);
    const trail: string[] = [];
    for await (const event of stream) {
      if (event.type === 'content_block_start' || event.type === 'content_block_stop') trail.push(`${event.type}:${event.index}`);
    }
    const final = await stream.finalMessage();
    const expected = whole.content.flatMap((_, index) => [`content_block_start:${index}`, `content_block_stop:${index}`]);
    assert.deepEqual(trail, expected);
    assert.deepEqual(final.content.map((block) => block.type === 'tool_use' && [block.name, block.input]), whole.content.map((block) => block.type === 'tool_use' && [block.name, block.input]));
    for (const block of final.content as Anthropic.ToolUseBlock[]) {
      if (block.name === 'ping') assert.deepEqual(block.input, {});
      else assertWeatherInput(block.input);
    }
    assert.equal(new Set(final.content.map((block) => (block as Anthropic.ToolUseBlock).id)).size, final.content.length, 'ids are unique');
  });

  test('tool_choice none: plain text, no tool_use', async () => {
    const message = await client.messages.create({
      model: STORIES,
      messages: ASK_WEATHER,
      tools: [weather],
      tool_choice: { type: 'none' },
      max_tokens: 6,
      ...GREEDY,
    });
    assert.deepEqual(message.content.map((block) => block.type), ['text']);
    assert.equal(message.stop_reason, 'max_tokens');
  });

  test('tool_result round trip: the tool_use and its result (string or blocks) go back as history', async () => {
    const first = await client.messages.create({
      model: STORIES,
      messages: ASK_WEATHER,
      tools: [weather],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      max_tokens: 200,
      ...GREEDY,
    });
    const use = first.content.find((block) => block.type === 'tool_use') as Anthropic.ToolUseBlock;
    for (const result of ['Sunny, 24 C.', [{ type: 'text' as const, text: 'Sunny, ' }, { type: 'text' as const, text: '24 C.' }]]) {
      const messages: Anthropic.MessageParam[] = [
        ...ASK_WEATHER,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: result }, { type: 'text', text: 'Thanks!' }] },
      ];
      const second = await client.messages.create({ model: STORIES, messages, tools: [weather], max_tokens: 4, ...GREEDY });
      assert.equal(second.stop_reason === 'max_tokens' || second.stop_reason === 'tool_use', true);
      const counted = await client.messages.countTokens({ model: STORIES, messages, tools: [weather] });
      assert.equal(counted.input_tokens, promptSize(second.usage));
      assert.ok(counted.input_tokens > promptSize(first.usage));
    }
    const failed = await client.messages.create({
      model: STORIES,
      messages: [
        ...ASK_WEATHER,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'city unknown', is_error: true }] },
      ],
      tools: [weather],
      max_tokens: 2,
    });
    assert.equal(failed.type, 'message');
  });

  test('cache_control: accepted; the first call writes the prefix, a repeat reads it', async () => {
    const system = freshSystem();
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model: STORIES,
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me a story.' }] }],
      max_tokens: 3,
      ...GREEDY,
    };
    const cold = await client.messages.create(params);
    const warm = await client.messages.create(params);
    assert.ok(cold.usage.cache_creation_input_tokens! > 50, JSON.stringify(cold.usage));
    assert.ok(warm.usage.cache_read_input_tokens! > cold.usage.cache_read_input_tokens!, JSON.stringify(warm.usage));
    assert.ok(warm.usage.cache_read_input_tokens! >= cold.usage.cache_creation_input_tokens!, JSON.stringify(warm.usage));
    assert.equal(warm.usage.cache_creation_input_tokens, 0);
    assert.equal(promptSize(warm.usage), promptSize(cold.usage));
    const counted = await client.messages.countTokens({ model: STORIES, system: params.system, messages: params.messages });
    assert.equal(counted.input_tokens, promptSize(cold.usage));
    // A breakpoint on the last message block marks the whole prompt.
    const marked = await client.messages.create({
      ...params,
      system: freshSystem(),
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me a story.', cache_control: { type: 'ephemeral' } }] }],
    });
    assert.ok(marked.usage.cache_creation_input_tokens! > 50);
    assert.ok(marked.usage.input_tokens <= 12, JSON.stringify(marked.usage));
    // Top-level cache_control marks the last block too.
    const automatic = await client.messages.create({ ...params, system: freshSystem(), cache_control: { type: 'ephemeral' } });
    assert.ok(automatic.usage.cache_creation_input_tokens! > 50);
    assert.equal(automatic.usage.input_tokens, 0);
  });

  test('max_tokens 0 warms the cache: empty content, nothing generated, the prefix written; the real call reads it', async () => {
    const params = {
      model: STORIES,
      system: [{ type: 'text' as const, text: freshSystem(), cache_control: { type: 'ephemeral' as const } }],
      messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
      ...GREEDY,
    };
    const warm = await client.messages.create({ ...params, max_tokens: 0 });
    assert.deepEqual(warm.content, []);
    assert.equal(warm.stop_reason, 'max_tokens');
    assert.equal(warm.usage.output_tokens, 0);
    assert.ok(warm.usage.cache_creation_input_tokens! > 50);
    const streamed = await client.messages.stream({ ...params, max_tokens: 0 }).finalMessage();
    assert.deepEqual(streamed.content, []);
    assert.equal(streamed.usage.output_tokens, 0);
    const real = await client.messages.create({ ...params, max_tokens: 3 });
    assert.ok(real.usage.cache_read_input_tokens! >= warm.usage.cache_creation_input_tokens!, JSON.stringify(real.usage));
    assert.equal(real.usage.output_tokens, 3);
  });

  test('a repeated prompt without breakpoints reports cache reads too', async () => {
    const params = { system: freshSystem(), max_tokens: 2 };
    await greedy(2, params);
    const again = await greedy(2, params);
    assert.ok(again.usage.cache_read_input_tokens! > 50);
    assert.equal(again.usage.cache_creation_input_tokens, 0);
  });

  test('errors through the typed errors of the SDK: 400 missing max_tokens, 404 unknown model', async () => {
    await assert.rejects(
      client.messages.create({ model: STORIES, messages: PROMPT } as unknown as Anthropic.MessageCreateParamsNonStreaming),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError);
        assert.equal(error.status, 400);
        assert.equal(error.type, 'invalid_request_error');
        assert.match(error.message, /max_tokens/);
        assert.match(error.requestID ?? '', /^req_/);
        return true;
      },
    );
    await assert.rejects(client.messages.create({ model: 'claude-nope', messages: PROMPT, max_tokens: 2 }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError);
      assert.equal(error.type, 'not_found_error');
      assert.deepEqual(Object.keys(error.error as object).sort(), ['error', 'request_id', 'type']);
      return true;
    });
    await assert.rejects(client.messages.stream({ model: 'claude-nope', messages: PROMPT, max_tokens: 2 }).finalMessage(), Anthropic.NotFoundError);
    await assert.rejects(client.messages.countTokens({ model: 'claude-nope', messages: PROMPT }), Anthropic.NotFoundError);
  });

  test('malformed JSON: 400 invalid_request_error in Anthropic shape; OpenAI routes keep theirs', async () => {
    const anthropic = await rawRequest(server.url, 'POST', '/v1/messages', '{"model": "stories-260k", "messages": [');
    assert.equal(anthropic.status, 400);
    assert.equal(anthropic.body.type, 'error');
    assert.equal(anthropic.body.error.type, 'invalid_request_error');
    assert.match(anthropic.body.request_id, /^req_/);
    const openai = await rawRequest(server.url, 'POST', '/v1/chat/completions', '{"model": "stories-260k", "messages": [');
    assert.equal(openai.status, 400);
    assert.equal(openai.body.error.code, 'invalid_json');
    assert.equal(openai.body.type, undefined);
  });
});

describe('cache_control pins its prefix (2 sequences)', () => {
  let server: TestServer;
  let client: Anthropic;
  before(async () => {
    server = await startTestServer({ models: [{ id: STORIES, path: `${modelsDir}/stories260K.gguf`, context_size: 2048, sequences: 2 }] });
    client = new Anthropic({ baseURL: server.url, apiKey: 'test-key', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
  });

  /** Asks with a system prompt, marked with a breakpoint or not; then three other prompts; then the first again. */
  async function revisit(pinned: boolean): Promise<{ first: Anthropic.Message; again: Anthropic.Message }> {
    const system = [{ type: 'text' as const, text: freshSystem(), ...(pinned ? { cache_control: { type: 'ephemeral' as const } } : {}) }];
    const ask = (systemPrompt: string | typeof system) =>
      client.messages.create({ model: STORIES, system: systemPrompt, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 2, ...GREEDY });
    const first = await ask(system);
    for (let index = 0; index < 3; index++) await ask(freshSystem());
    return { first, again: await ask(system) };
  }

  test('a pinned prefix survives more distinct prompts than there are sequences', async () => {
    const { first, again } = await revisit(true);
    assert.ok(first.usage.cache_creation_input_tokens! > 50, JSON.stringify(first.usage));
    assert.ok(again.usage.cache_read_input_tokens! >= first.usage.cache_creation_input_tokens!, JSON.stringify(again.usage));
  });

  test('without a breakpoint the same prefix is evicted', async () => {
    const { first, again } = await revisit(false);
    assert.equal(first.usage.cache_creation_input_tokens, 0);
    // Only the start every fresh system prompt shares ('System 0.') is found again.
    assert.ok(again.usage.cache_read_input_tokens! < promptSize(first.usage) / 4, JSON.stringify(again.usage));
  });
});

describe('errors mid-stream (a 1.5 s request deadline)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { request_timeout_ms: 1500 } });
  });
  after(async () => {
    await server?.close();
  });
  // Greedy: a sampled end-of-text token would end the answer before the deadline and make the test flaky.
  const long = { model: TINY_RANDOM, messages: PROMPT, max_tokens: 4000, temperature: 0 };

  test('on the wire: an error event with the Anthropic body ends the stream, without message_stop', async () => {
    const response = await rawRequest(server.url, 'POST', '/v1/messages', { ...long, stream: true });
    assert.equal(response.status, 200);
    const frames = (response.body as string).trim().split('\n\n');
    assert.ok(frames.some((frame) => frame.startsWith('event: content_block_delta')), 'it streamed first');
    const last = /^event: error\ndata: (.*)$/s.exec(frames.at(-1)!);
    assert.ok(last, frames.at(-1));
    assert.deepEqual(JSON.parse(last[1]), {
      type: 'error',
      error: { type: 'timeout_error', message: 'The request exceeded its deadline.' },
      request_id: response.headers.get('request-id'),
    });
    assert.ok(!frames.some((frame) => frame.startsWith('event: message_stop')));
  });

  test("the SDK's stream throws it as an APIError of that type", async () => {
    const client = new Anthropic({ baseURL: server.url, apiKey: 'test-key', maxRetries: 0 });
    await assert.rejects(client.messages.stream(long).finalMessage(), (error: unknown) => {
      assert.ok(error instanceof Anthropic.APIError);
      assert.equal(error.type, 'timeout_error');
      return true;
    });
  });
});

describe('/v1/messages with accounts: keys, the ledger, billing', () => {
  const ADMIN_KEY = 'tm-admin-anthropic-0123456789abcdef';
  let server: TestServer;
  const admin = (method: string, path: string, body?: unknown) =>
    rawRequest(server.url, method, path, body, { authorization: `Bearer ${ADMIN_KEY}` });

  before(async () => {
    server = await startTestServer({ auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false } });
  });
  after(async () => {
    await server?.close();
  });

  async function newKey(): Promise<{ accountId: string; key: string }> {
    const account = await admin('POST', '/v1/admin/accounts', { name: `anthropic-${Math.random()}`, credits_usd: 1 });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' });
    return { accountId: account.body.id, key: key.body.key };
  }

  test('x-api-key authenticates; the ledger records /v1/messages with its tokens and cost', async () => {
    const { accountId, key } = await newKey();
    const client = new Anthropic({ baseURL: server.url, apiKey: key, maxRetries: 0 });
    const { data, response } = await client.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 6 }).withResponse();
    const requestId = response.headers.get('request-id')!;
    let records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    for (let attempt = 0; attempt < 50 && records.body.data.length < 1; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    }
    assert.equal(records.body.data.length, 1);
    const record = records.body.data[0];
    assert.equal(record.id, requestId);
    assert.equal(record.endpoint, '/v1/messages');
    assert.equal(record.model, STORIES);
    assert.equal(record.status, 'completed');
    assert.equal(record.prompt_tokens, promptSize(data.usage));
    assert.equal(record.cached_tokens, data.usage.cache_read_input_tokens);
    assert.equal(record.completion_tokens, data.usage.output_tokens);
    // Demo prices of stories-260k: 0.10 input, 0.025 cached, 0.40 output USD per 1M tokens.
    const exact = (record.prompt_tokens - record.cached_tokens) * 100_000 + record.cached_tokens * 25_000 + record.completion_tokens * 400_000;
    assert.equal(record.cost_micros, Math.floor((exact + 500_000) / 1_000_000));
    const account = await admin('GET', `/v1/admin/accounts/${accountId}`);
    assert.equal(account.body.balance_micros, 1_000_000 - record.cost_micros);
  });

  test('a bad key is a 401 authentication_error, the admin key a 403 permission_error, in Anthropic shape', async () => {
    const bad = new Anthropic({ baseURL: server.url, apiKey: 'sk-not-a-key', maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 2 }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.AuthenticationError);
      assert.equal(error.type, 'authentication_error');
      return true;
    });
    await assert.rejects(bad.messages.countTokens({ model: STORIES, messages: PROMPT }), Anthropic.AuthenticationError);
    const missing = await rawRequest(server.url, 'POST', '/v1/messages', { model: STORIES, messages: PROMPT, max_tokens: 2 });
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.type, 'authentication_error');
    const adminClient = new Anthropic({ baseURL: server.url, apiKey: ADMIN_KEY, maxRetries: 0 });
    await assert.rejects(adminClient.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 2 }), Anthropic.PermissionDeniedError);
    const openai = await rawRequest(server.url, 'POST', '/v1/chat/completions', { model: STORIES, messages: PROMPT, max_tokens: 2 });
    assert.equal(openai.status, 401);
    assert.equal(openai.body.error.code, 'invalid_api_key', 'OpenAI routes keep the OpenAI shape');
  });

  test('a client that leaves a stream stops generation, and what was generated is billed', async () => {
    const { key } = await newKey();
    const client = new Anthropic({ baseURL: server.url, apiKey: key, maxRetries: 0 });
    const stream = client.messages.stream({ model: TINY_RANDOM, messages: PROMPT, max_tokens: 3000 });
    let deltas = 0;
    try {
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && ++deltas === 5) stream.abort();
      }
    } catch {
      // aborted
    }
    let records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    for (let attempt = 0; attempt < 50 && records.body.data.length < 1; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    }
    const record = records.body.data[0];
    assert.equal(record.endpoint, '/v1/messages');
    assert.equal(record.status, 'cancelled');
    assert.ok(record.completion_tokens >= 5 && record.completion_tokens < 3000, `completion tokens ${record.completion_tokens}`);
    assert.ok(record.cost_micros > 0);
  });

  test('a rate limit: 429 rate_limit_error with retry-after', async () => {
    const account = await admin('POST', '/v1/admin/accounts', { name: `limited-${Math.random()}`, credits_usd: 1, rpm: 1 });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' });
    const client = new Anthropic({ baseURL: server.url, apiKey: key.body.key, maxRetries: 0 });
    await client.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 1 });
    await assert.rejects(client.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 1 }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.RateLimitError);
      assert.equal(error.type, 'rate_limit_error');
      assert.ok(Number(error.headers?.get('retry-after')) > 0);
      return true;
    });
  });

  test('an account without funds: 402 billing_error', async () => {
    const account = await admin('POST', '/v1/admin/accounts', { name: `broke-${Math.random()}`, credits_usd: 0 });
    const key = await admin('POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' });
    const response = await rawRequest(server.url, 'POST', '/v1/messages', { model: STORIES, messages: PROMPT, max_tokens: 2 }, { 'x-api-key': key.body.key });
    assert.equal(response.status, 402, JSON.stringify(response.body));
    assert.equal(response.body.error.type, 'billing_error');
  });
});

describe('cache writes are billed at the cache_write price', () => {
  const ADMIN_KEY = 'tm-admin-anthropic-cache-0123456789ab';
  // Micro-USD per token: input 10, cached 1, output 20, cache write 12.5 (Anthropic's 1.25x input).
  const PRICES = { input: 10, cached_input: 1, output: 20, cache_write: 12.5 };
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
      models: [{ id: STORIES, path: `${modelsDir}/stories260K.gguf`, context_size: 2048, prices: PRICES }],
    });
  });
  after(async () => {
    await server?.close();
  });

  test('the record counts the cache writes and its cost follows from its columns, rounded once', async () => {
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const account = await rawRequest(server.url, 'POST', '/v1/admin/accounts', { name: 'cache-writes', credits_usd: 1 }, headers);
    const key = (await rawRequest(server.url, 'POST', `/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' }, headers)).body.key as string;
    const client = new Anthropic({ baseURL: server.url, apiKey: key, maxRetries: 0 });
    const system: Anthropic.TextBlockParam[] = [{ type: 'text', text: freshSystem(), cache_control: { type: 'ephemeral' } }];
    const { data, response } = await client.messages.create({ model: STORIES, system, messages: PROMPT, max_tokens: 3 }).withResponse();
    const written = data.usage.cache_creation_input_tokens ?? 0;
    assert.ok(written > 0, 'the breakpoint wrote the prefix');
    let records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    for (let attempt = 0; attempt < 50 && records.body.data.length < 1; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      records = await rawRequest(server.url, 'GET', '/v1/usage/requests', undefined, { 'x-api-key': key });
    }
    const record = records.body.data.find((entry: { id: string }) => entry.id === response.headers.get('request-id'));
    assert.equal(record.cache_write_tokens, written);
    const uncached = record.prompt_tokens - record.cached_tokens - written;
    assert.equal(uncached, data.usage.input_tokens);
    // In half micro-USD, so that 12.5 is whole; the cost is rounded once, half up.
    const halves = uncached * 20 + written * 25 + record.cached_tokens * 2 + record.completion_tokens * 40;
    assert.equal(record.cost_micros, Math.floor((halves + 1) / 2));
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type OpenAI from 'openai';
import { zodFunction } from 'openai/helpers/zod';
import { z } from 'zod';
import { startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/**
 * Tool calling on the tiny models: under `required` or a named tool the answer is always valid calls (constrained
 * decoding); under `auto` the model chooses; `none` is plain text. Arguments are validated with Ajv.
 */
const ajv = new Ajv2020({ strict: false });

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather forecast for a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
    strict: true,
  },
};
const note = {
  type: 'function' as const,
  function: {
    name: 'save_note',
    description: 'Saves a short note.',
    parameters: {
      type: 'object',
      properties: { text: { type: 'string', maxLength: 16 }, pinned: { type: 'boolean' } },
      required: ['text', 'pinned'],
      additionalProperties: false,
    },
  },
};
const ping = { type: 'function' as const, function: { name: 'ping' } };
const TOOLS = [weather, note, ping];
const MESSAGES = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

let server: TestServer;
let client: OpenAI;

function assertValidCalls(calls: OpenAI.ChatCompletionMessageToolCall[] | undefined, allowed = TOOLS): void {
  assert.ok(calls && calls.length > 0, 'tool calls');
  for (const call of calls) {
    assert.equal(call.type, 'function');
    if (call.type !== 'function') continue;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    const tool = allowed.find((candidate) => candidate.function.name === call.function.name);
    assert.ok(tool, `unknown tool ${call.function.name}`);
    const args = JSON.parse(call.function.arguments);
    const schema = ('parameters' in tool.function ? tool.function.parameters : { type: 'object', maxProperties: 0 }) as object;
    assert.ok(ajv.validate(schema, args), `${call.function.arguments}: ${JSON.stringify(ajv.errors)}`);
  }
  assert.equal(new Set(calls.map((call) => call.id)).size, calls.length, 'ids are unique');
}

async function create(extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>): Promise<OpenAI.ChatCompletion> {
  return client.chat.completions.create({
    model: STORIES,
    messages: MESSAGES,
    tools: TOOLS,
    max_tokens: 300,
    temperature: 0,
    ...extra,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
}

before(async () => {
  server = await startTestServer();
  client = server.client;
});

after(async () => {
  await server?.close();
});

describe('tool_choice', () => {
  test('required: valid calls, finish_reason tool_calls, content null', async () => {
    const response = await create({ tool_choice: 'required', parallel_tool_calls: false });
    const [choice] = response.choices;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls!.length, 1, 'parallel_tool_calls false: one call');
    assertValidCalls(choice.message.tool_calls);
  });

  test('required with parallel calls: one to eight valid calls', async () => {
    const response = await create({ tools: [weather, ping], tool_choice: 'required', max_tokens: 600, seed: 3, temperature: 0.8 });
    const calls = response.choices[0].message.tool_calls!;
    assert.equal(response.choices[0].finish_reason, 'tool_calls');
    assert.ok(calls.length >= 1 && calls.length <= 8, `${calls.length} calls`);
    assertValidCalls(calls);
  });

  for (const name of ['get_weather', 'save_note', 'ping']) {
    test(`a named function (${name}): every call is to it`, async () => {
      const response = await create({ tool_choice: { type: 'function', function: { name } }, parallel_tool_calls: false });
      const calls = response.choices[0].message.tool_calls!;
      assert.equal(response.choices[0].finish_reason, 'tool_calls');
      assertValidCalls(calls);
      for (const call of calls) assert.equal(call.type === 'function' && call.function.name, name);
      if (name === 'ping') assert.equal(calls[0].type === 'function' && calls[0].function.arguments, '{}');
    });
  }

  test('none: plain text, no tool calls', async () => {
    const response = await create({ tool_choice: 'none', max_tokens: 20 });
    const [choice] = response.choices;
    assert.equal(choice.message.tool_calls, undefined);
    assert.equal(typeof choice.message.content, 'string');
    assert.ok(['stop', 'length'].includes(choice.finish_reason));
  });

  test('auto (the default with tools): the model may answer in text', async () => {
    const response = await create({ max_tokens: 20 });
    const [choice] = response.choices;
    if (choice.message.tool_calls) {
      assertValidCalls(choice.message.tool_calls);
      assert.equal(choice.finish_reason, 'tool_calls');
    } else {
      assert.equal(typeof choice.message.content, 'string');
      assert.ok(!choice.message.content!.startsWith('['));
    }
  });

  test('auto: a model that starts a call makes a valid one (bias toward "[")', async () => {
    for (const model of [STORIES, TINY_RANDOM]) {
      // The last token of 'a[' is '[' alone (a lone '[' tokenizes with SentencePiece's leading space).
      const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { model, content: 'a[' });
      const bracket = String(tokenized.body.tokens.at(-1));
      const response = await create({
        model,
        logit_bias: { [bracket]: 100 },
        tools: [weather],
        parallel_tool_calls: false,
        max_tokens: 100,
      });
      assert.equal(response.choices[0].finish_reason, 'tool_calls', `${model}: ${JSON.stringify(response.choices[0].message)}`);
      assertValidCalls(response.choices[0].message.tool_calls, [weather]);
    }
  });

  test('auto with response_format: a text answer follows the schema', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['sunny', 'rainy'] } }, required: ['answer'], additionalProperties: false };
    const response = await create({ response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
    const message = response.choices[0].message;
    if (message.tool_calls) assertValidCalls(message.tool_calls);
    else assert.ok(ajv.validate(schema, JSON.parse(message.content!)), message.content!);
  });
});

describe('streamed tool calls', () => {
  test('deltas as OpenAI sends them: index, id, type and name first, then argument fragments', async () => {
    const whole = await create({ tool_choice: 'required', parallel_tool_calls: false, seed: 5 });
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: MESSAGES,
      tools: TOOLS,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 300,
      temperature: 0,
      seed: 5,
      stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    const [first, ...rest] = deltas;
    assert.equal(first.index, 0);
    assert.match(first.id!, /^call_/);
    assert.equal(first.type, 'function');
    assert.ok(first.function?.name);
    assert.ok(rest.length >= 2, 'the arguments come in fragments');
    for (const delta of rest) {
      assert.equal(delta.index, 0);
      assert.equal(delta.id, undefined);
      assert.equal(delta.function?.name, undefined);
    }
    const argumentsText = deltas.map((delta) => delta.function?.arguments ?? '').join('');
    const expected = whole.choices[0].message.tool_calls![0];
    assert.equal(expected.type === 'function' && expected.function.arguments, argumentsText, 'greedy: streamed and whole calls agree');
  });

  test("the client's stream helper reassembles parallel calls", async () => {
    const stream = client.chat.completions.stream({
      model: STORIES,
      messages: MESSAGES,
      tools: [weather, ping],
      tool_choice: 'required',
      max_tokens: 600,
      temperature: 0.8,
      seed: 3,
    });
    const completion = await stream.finalChatCompletion();
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
    assertValidCalls(completion.choices[0].message.tool_calls);
  });
});

describe("the openai client's tool helpers", () => {
  const Forecast = z.object({ city: z.enum(['Paris', 'Rome']), days: z.number().int().min(1).max(7), metric: z.boolean() });
  const Reminder = z.object({ text: z.string().max(16), at: z.string().uuid().nullable() });

  test('zodFunction with chat.completions.parse(): parsed_arguments pass the zod schema', async () => {
    const completion = await client.chat.completions.parse({
      model: STORIES,
      messages: MESSAGES,
      max_tokens: 600,
      temperature: 0,
      tools: [zodFunction({ name: 'forecast', parameters: Forecast }), zodFunction({ name: 'remind', parameters: Reminder })],
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    const calls = completion.choices[0].message.tool_calls ?? [];
    assert.ok(calls.length > 0);
    for (const call of calls) {
      assert.equal(call.type, 'function');
      if (call.type !== 'function') continue;
      const schema = call.function.name === 'forecast' ? Forecast : Reminder;
      assert.deepEqual(schema.parse(call.function.parsed_arguments), call.function.parsed_arguments);
    }
  });
});

describe('conversations with tool calls and results', () => {
  const history: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the weather in Paris and Rome?' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":1}' } },
        { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome","days":1}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '{"forecast":"sunny"}' },
    { role: 'tool', tool_call_id: 'call_2', content: '{"forecast":"rain"}' },
  ];

  test('are accepted and rendered into the prompt (calls, results, and the tools)', async () => {
    const short = await create({ messages: history.slice(0, 2), tools: undefined, max_tokens: 5 });
    const withResults = await create({ messages: history, tools: undefined, max_tokens: 5 });
    const withTools = await create({ messages: history, max_tokens: 5 });
    assert.ok(withResults.usage!.prompt_tokens > short.usage!.prompt_tokens + 30, 'calls and results are in the prompt');
    assert.ok(withTools.usage!.prompt_tokens > withResults.usage!.prompt_tokens + 30, 'the tools are described');
    const next = await create({ messages: history, tool_choice: 'required', parallel_tool_calls: false });
    assertValidCalls(next.choices[0].message.tool_calls);
  });

  test('tool_choice none still accepts a history with calls', async () => {
    const response = await create({ messages: history, tool_choice: 'none', max_tokens: 5 });
    assert.equal(response.choices[0].message.tool_calls, undefined);
  });
});

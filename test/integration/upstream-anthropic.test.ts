import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/load-config.js';
import { spawnServer, startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-anthropic-upstream-0123456';
const REMOTE = 'story-anthropic';
const UPSTREAM_KEY = 'sk-ant-upstream-secret-0123';
const remotePrices = { input: 0.3, cached_input: 0.03, output: 1.5 };
/** Greedy sampling (the SDK's types no longer list temperature; the API takes it). */
const GREEDY: object = { temperature: 0 };
const PROMPT: Anthropic.MessageParam[] = [{ role: 'user', content: 'Once upon a time' }];

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
const openAIWeather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: weather.name, description: weather.description!, parameters: weather.input_schema as Record<string, unknown> },
};

function assertWeatherInput(input: unknown): void {
  const value = input as { city: string; days: number };
  assert.ok(['Paris', 'Rome', 'Oslo'].includes(value.city), JSON.stringify(input));
  assert.ok(Number.isInteger(value.days) && value.days >= 1 && value.days <= 7, JSON.stringify(input));
}

/**
 * A gateway Tokenmill (in this process, accounts on) serving a local model and a `kind: anthropic` model, whose
 * upstream is a second Tokenmill process (auth off) answering `/v1/messages`: both official clients run against the
 * gateway's Anthropic-upstream model, and answers are compared with the upstream's own.
 */
describe('a gateway with a kind: anthropic upstream model', () => {
  let upstream: { child: ChildProcess; url: string };
  let direct: Anthropic;
  let gateway: TestServer;
  let anthropic: Anthropic;
  let openai: OpenAI;
  let key: string;

  before(async () => {
    upstream = await spawnServer([]);
    direct = new Anthropic({ baseURL: upstream.url, apiKey: 'unused', maxRetries: 0 });
    const stories = loadConfig({ env: {} }).models.find((model) => model.id === STORIES)!;
    gateway = await startTestServer({
      auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false },
      models: [
        { ...stories, prices: { ...stories.prices } },
        {
          id: REMOTE,
          context_size: 2048,
          tokenizer: STORIES,
          prices: remotePrices,
          deployments: [{ kind: 'anthropic', base_url: upstream.url, model: STORIES, api_key: UPSTREAM_KEY, default_max_tokens: 16 }],
        },
      ],
    });
    const admin = (path: string, body: unknown) => rawRequest(gateway.url, 'POST', path, body, { authorization: `Bearer ${ADMIN_KEY}` });
    const account = await admin('/v1/admin/accounts', { name: 'anthropic-upstream', credits_usd: 10 });
    key = (await admin(`/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' })).body.key;
    anthropic = new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0 });
    openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });

  after(async () => {
    await gateway?.close();
    upstream?.child.kill('SIGKILL');
  });

  test('messages: the same answer, stop reason and usage as the upstream gives directly', async () => {
    const request = { messages: PROMPT, max_tokens: 12, ...GREEDY };
    const viaGateway = await anthropic.messages.create({ model: REMOTE, ...request });
    const viaUpstream = await direct.messages.create({ model: STORIES, ...request });
    assert.equal(viaGateway.model, REMOTE);
    assert.deepEqual(viaGateway.content, viaUpstream.content);
    assert.equal(viaGateway.stop_reason, 'max_tokens');
    assert.equal(viaGateway.usage.output_tokens, 12);
    const size = (usage: Anthropic.Usage) => usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0);
    assert.equal(size(viaGateway.usage), size(viaUpstream.usage));
  });

  test('chat completions: the upstream answer as OpenAI chat, with its usage; no max_tokens uses default_max_tokens', async () => {
    const reference = await direct.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 12, ...GREEDY });
    const completion = await openai.chat.completions.create({ model: REMOTE, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 12, temperature: 0 });
    assert.equal(completion.choices[0].message.content, (reference.content[0] as Anthropic.TextBlock).text);
    assert.equal(completion.choices[0].finish_reason, 'length');
    assert.equal(completion.usage!.completion_tokens, 12);
    assert.equal(completion.usage!.prompt_tokens, reference.usage.input_tokens + (reference.usage.cache_read_input_tokens ?? 0) + (reference.usage.cache_creation_input_tokens ?? 0));
    const unbounded = await openai.chat.completions.create({ model: REMOTE, messages: [{ role: 'user', content: 'Once upon a time' }], temperature: 0 });
    assert.equal(unbounded.usage!.completion_tokens, 16, 'default_max_tokens');
  });

  test('streamed, both clients: deltas assemble to the unstreamed answer; usage arrives', async () => {
    const whole = await anthropic.messages.create({ model: REMOTE, messages: PROMPT, max_tokens: 10, ...GREEDY });
    const types: string[] = [];
    const stream = anthropic.messages.stream({ model: REMOTE, messages: PROMPT, max_tokens: 10, ...GREEDY });
    stream.on('streamEvent', (event) => types.push(event.type));
    const final = await stream.finalMessage();
    assert.deepEqual(final.content, whole.content);
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, 10);
    assert.equal(types[0], 'message_start');
    assert.ok(types.includes('content_block_delta'));
    assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);

    const chunks = await openai.chat.completions.create({
      model: REMOTE,
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    for await (const chunk of chunks) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, (whole.content[0] as Anthropic.TextBlock).text);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 10);
    assert.equal(usage?.prompt_tokens, whole.usage.input_tokens + (whole.usage.cache_read_input_tokens ?? 0) + (whole.usage.cache_creation_input_tokens ?? 0));
  });

  test('tools, Anthropic client: tool_choice any gives a tool_use with parsed input; the result goes back as tool_result', async () => {
    const request = { model: REMOTE, max_tokens: 60, tools: [weather], tool_choice: { type: 'any' as const, disable_parallel_tool_use: true }, ...GREEDY };
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const called = await anthropic.messages.create({ ...request, messages });
    assert.equal(called.stop_reason, 'tool_use');
    const use = called.content.find((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use')!;
    assert.equal(use.name, 'get_weather');
    assert.match(use.id, /^toolu_/);
    assertWeatherInput(use.input);
    const streamed = await anthropic.messages.stream({ ...request, messages }).finalMessage();
    const streamedUse = streamed.content.find((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use')!;
    assertWeatherInput(streamedUse.input);
    // The conversation goes on: tool_use and tool_result ids round-trip through the gateway to the upstream.
    const answered = await anthropic.messages.create({
      model: REMOTE,
      max_tokens: 8,
      tools: [weather],
      messages: [
        ...messages,
        { role: 'assistant', content: called.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Sunny, 21 C' }] },
      ],
    });
    assert.ok(['end_turn', 'max_tokens', 'tool_use'].includes(answered.stop_reason!), answered.stop_reason!);
  });

  test('tools, OpenAI client: tool_choice required gives parsed arguments; streamed tool-call deltas assemble', async () => {
    const request = {
      model: REMOTE,
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      tools: [openAIWeather],
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      max_tokens: 60,
      // Greedy: sampled whitespace inside the call could run past max_tokens and make the test flaky.
      temperature: 0,
    };
    const response = await openai.chat.completions.create(request);
    const choice = response.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls?.length, 1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.function.name, 'get_weather');
    assert.match(call.id, /^call_/);
    assertWeatherInput(JSON.parse(call.function.arguments));

    const stream = await openai.chat.completions.create({ ...request, stream: true });
    const calls: Array<{ id: string; name: string; arguments: string }> = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        calls[delta.index] ??= { id: '', name: '', arguments: '' };
        if (delta.id) calls[delta.index].id = delta.id;
        if (delta.function?.name) calls[delta.index].name = delta.function.name;
        calls[delta.index].arguments += delta.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].name, 'get_weather');
    assertWeatherInput(JSON.parse(calls[0].arguments));

    // A tool message answers the call: the upstream accepts the conversation.
    const answered = await openai.chat.completions.create({
      model: REMOTE,
      max_tokens: 6,
      tools: [openAIWeather],
      messages: [...request.messages, choice.message, { role: 'tool', tool_call_id: call.id, content: 'Sunny' }],
    });
    assert.ok(answered.choices[0].finish_reason);
  });

  test('stop sequences: the upstream stops, and stop_sequence comes back through both clients', async () => {
    const full = (await direct.messages.create({ model: STORIES, messages: PROMPT, max_tokens: 40, ...GREEDY })).content[0] as Anthropic.TextBlock;
    const stop = full.text.slice(15, 21);
    const expected = full.text.slice(0, full.text.indexOf(stop));
    const stopped = await anthropic.messages.create({ model: REMOTE, messages: PROMPT, max_tokens: 40, ...GREEDY, stop_sequences: [stop] });
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, stop);
    assert.equal((stopped.content[0] as Anthropic.TextBlock).text, expected);
    const streamed = await anthropic.messages.stream({ model: REMOTE, messages: PROMPT, max_tokens: 40, ...GREEDY, stop_sequences: [stop] }).finalMessage();
    assert.equal(streamed.stop_sequence, stop);
    const chat = await openai.chat.completions.create({ model: REMOTE, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 40, temperature: 0, stop: [stop] });
    assert.equal(chat.choices[0].finish_reason, 'stop');
    assert.equal(chat.choices[0].message.content, expected);
  });

  test('a cache_control breakpoint reaches the upstream: the second call reads the prefix from its cache', async () => {
    const system: Anthropic.TextBlockParam[] = [
      { type: 'text', text: `System ${Math.random()}: ${'Once upon a time there was a cat. '.repeat(12)}`, cache_control: { type: 'ephemeral' } },
    ];
    const first = await anthropic.messages.create({ model: REMOTE, system, messages: PROMPT, max_tokens: 2, ...GREEDY });
    const second = await anthropic.messages.create({ model: REMOTE, system, messages: [{ role: 'user', content: 'A different question' }], max_tokens: 2, ...GREEDY });
    assert.ok((first.usage.cache_creation_input_tokens ?? 0) > 0, JSON.stringify(first.usage));
    assert.ok((second.usage.cache_read_input_tokens ?? 0) > 0, JSON.stringify(second.usage));
  });

  test("the upstream's usage is billed at the catalog's prices", async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: REMOTE, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 10 })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    let record: Record<string, any> | undefined;
    for (let attempt = 0; attempt < 50 && !record; attempt++) {
      const records = await rawRequest(gateway.url, 'GET', '/v1/usage/requests', undefined, { authorization: `Bearer ${key}` });
      record = records.body.data.find((candidate: { id: string }) => candidate.id === requestId);
      if (!record) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(record);
    assert.equal(record.model, REMOTE);
    assert.equal(record.status, 'completed');
    assert.equal(record.prompt_tokens, data.usage!.prompt_tokens);
    assert.equal(record.completion_tokens, 10);
    const cached = record.cached_tokens;
    const exact = (record.prompt_tokens - cached) * 300_000 + cached * 30_000 + record.completion_tokens * 1_500_000;
    assert.equal(record.cost_micros, Math.floor((exact + 500_000) / 1_000_000));
  });

  test('what Anthropic cannot do is a 400 naming the parameter: embeddings, completions, json_schema, logprobs', async () => {
    const post = (path: string, body: unknown) => rawRequest(gateway.url, 'POST', path, body, { authorization: `Bearer ${key}` });
    const embeddings = await post('/v1/embeddings', { model: REMOTE, input: 'a cat' });
    assert.equal(embeddings.status, 400);
    assert.equal(embeddings.body.error.code, 'model_not_supported');
    const completions = await post('/v1/completions', { model: REMOTE, prompt: 'Once', max_tokens: 4 });
    assert.equal(completions.status, 400);
    assert.equal(completions.body.error.code, 'model_not_supported');
    const schema = { type: 'object', properties: { name: { type: 'string' } } };
    const structured = await post('/v1/chat/completions', {
      model: REMOTE,
      messages: [{ role: 'user', content: 'A name?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    assert.equal(structured.status, 400);
    assert.match(structured.body.error.param, /^response_format/);
    const logprobs = await post('/v1/chat/completions', { model: REMOTE, messages: [{ role: 'user', content: 'Hi' }], logprobs: true });
    assert.equal(logprobs.status, 400);
    assert.equal(logprobs.body.error.param, 'logprobs');
    const prefill = await anthropic.messages.create({
      model: REMOTE,
      max_tokens: 4,
      ...GREEDY,
      messages: [...PROMPT, { role: 'assistant', content: 'there was' }],
    });
    assert.equal(prefill.stop_reason, 'max_tokens', 'a prefill is continued upstream');
  });
});

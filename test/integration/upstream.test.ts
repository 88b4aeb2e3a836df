import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/load-config.js';
import { spawnServer, startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const ADMIN_KEY = 'tm-admin-upstream-test-0123456789ab';
const REMOTE = 'story-remote';
const remotePrices = { input: 0.2, cached_input: 0.05, output: 0.8 };

/**
 * A gateway Tokenmill (in this process, accounts on) serving a local model and an upstream model, whose upstream is
 * a second Tokenmill process (auth off) on another port: the official client runs every endpoint against both.
 */
describe('a gateway with a local model and an upstream model', () => {
  let upstream: { child: ChildProcess; url: string };
  let direct: OpenAI;
  let gateway: TestServer;
  let client: OpenAI;
  let key: string;

  before(async () => {
    upstream = await spawnServer([]);
    direct = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'unused', maxRetries: 0 });
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
          deployments: [{ kind: 'openai', base_url: `${upstream.url}/v1`, model: STORIES, timeout_ms: 30_000, weight: 1 }],
        },
      ],
    });
    const admin = (path: string, body: unknown) => rawRequest(gateway.url, 'POST', path, body, { authorization: `Bearer ${ADMIN_KEY}` });
    const account = await admin('/v1/admin/accounts', { name: 'upstream', credits_usd: 10 });
    key = (await admin(`/v1/admin/accounts/${account.body.id}/keys`, { name: 'k' })).body.key;
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });

  after(async () => {
    await gateway?.close();
    upstream?.child.kill('SIGKILL');
  });

  test('/v1/models lists the local and the upstream model', async () => {
    const models = await client.models.list();
    const ids = models.data.map((model) => model.id);
    assert.ok(ids.includes(STORIES) && ids.includes(REMOTE), ids.join(','));
    assert.equal((await client.models.retrieve(REMOTE)).id, REMOTE);
  });

  test('chat: the same answer and usage as the upstream gives directly', async () => {
    const request = { messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 12, temperature: 0 };
    const viaGateway = await client.chat.completions.create({ model: REMOTE, ...request });
    const viaUpstream = await direct.chat.completions.create({ model: STORIES, ...request });
    assert.equal(viaGateway.model, REMOTE);
    assert.equal(viaGateway.choices[0].message.content, viaUpstream.choices[0].message.content);
    assert.equal(viaGateway.choices[0].finish_reason, viaUpstream.choices[0].finish_reason);
    assert.equal(viaGateway.usage!.prompt_tokens, viaUpstream.usage!.prompt_tokens);
    assert.equal(viaGateway.usage!.completion_tokens, viaUpstream.usage!.completion_tokens);
    const local = await client.chat.completions.create({ model: STORIES, ...request });
    assert.equal(local.choices[0].message.content, viaUpstream.choices[0].message.content, 'the local model is the same GGUF');
  });

  test('chat, streamed: deltas and the usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: REMOTE,
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    let first = true;
    for await (const chunk of stream) {
      if (first) assert.equal(chunk.choices[0]?.delta.role, 'assistant', 'the first chunk opens the choice');
      first = false;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 12);
    assert.ok(usage!.prompt_tokens > 0);
  });

  test('tools with tool_choice required: valid calls through the upstream', async () => {
    const response = await client.chat.completions.create({
      model: REMOTE,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather of a city',
            parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'], additionalProperties: false },
          },
        },
      ],
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 200,
      seed: 1,
    });
    const choice = response.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls?.length, 1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.function.name, 'get_weather');
    assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
  });

  test('completions (text and token prompts) and embeddings through the upstream', async () => {
    const request = { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 };
    const viaGateway = await client.completions.create({ model: REMOTE, ...request });
    const viaUpstream = await direct.completions.create({ model: STORIES, ...request });
    assert.equal(viaGateway.choices[0].text, viaUpstream.choices[0].text);
    assert.equal(viaGateway.usage!.prompt_tokens, viaUpstream.usage!.prompt_tokens);
    const tokens = await client.completions.create({ model: REMOTE, prompt: [1, 100, 200], max_tokens: 4, temperature: 0 });
    assert.equal(tokens.usage!.prompt_tokens, 3);
    const embedded = await client.embeddings.create({ model: REMOTE, input: ['Once upon a time', 'a cat'] });
    const embeddedDirect = await direct.embeddings.create({ model: STORIES, input: ['Once upon a time', 'a cat'] });
    assert.equal(embedded.data.length, 2);
    assert.equal(embedded.data[0].embedding.length, embeddedDirect.data[0].embedding.length);
    embedded.data[0].embedding.forEach((value, index) => assert.ok(Math.abs(value - embeddedDirect.data[0].embedding[index]) < 1e-5));
    assert.equal(embedded.usage.prompt_tokens, embeddedDirect.usage.prompt_tokens);
  });

  test('structured output, guided choice and logprobs are forwarded and enforced by the upstream', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 } }, required: ['name'], additionalProperties: false };
    const structured = await client.chat.completions.create({
      model: REMOTE,
      messages: [{ role: 'user', content: 'A name?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
      max_tokens: 60,
      seed: 3,
    });
    assert.deepEqual(Object.keys(JSON.parse(structured.choices[0].message.content!)), ['name']);
    const chosen = await client.completions.create({ model: REMOTE, prompt: 'Color:', max_tokens: 10, guided_choice: ['red', 'green'] } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.ok(['red', 'green'].includes(chosen.choices[0].text), chosen.choices[0].text);
    const request = { messages: [{ role: 'user' as const, content: 'Once' }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2 };
    const viaGateway = await client.chat.completions.create({ model: REMOTE, ...request });
    const viaUpstream = await direct.chat.completions.create({ model: STORIES, ...request });
    const gatewayTokens = viaGateway.choices[0].logprobs!.content!;
    const upstreamTokens = viaUpstream.choices[0].logprobs!.content!;
    assert.equal(gatewayTokens.length, 3);
    assert.deepEqual(gatewayTokens.map((entry) => [entry.token, entry.bytes, entry.top_logprobs.map((top) => top.token)]), upstreamTokens.map((entry) => [entry.token, entry.bytes, entry.top_logprobs.map((top) => top.token)]));
    // Logprobs repeat to float noise only (prefix reuse and batching change the last bits).
    gatewayTokens.forEach((entry, index) => assert.ok(Math.abs(entry.logprob - upstreamTokens[index].logprob) < 1e-3));
  });

  test("the upstream's usage is billed at the catalog's prices", async () => {
    const { data, response } = await client.chat.completions
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
    assert.equal(record.completion_tokens, data.usage!.completion_tokens);
    const cached = record.cached_tokens;
    const exact = (record.prompt_tokens - cached) * 200_000 + cached * 50_000 + record.completion_tokens * 800_000;
    assert.equal(record.cost_micros, Math.floor((exact + 500_000) / 1_000_000));
  });

  test("the upstream's refusals reach the client: a prompt over the upstream's context is a 400 with its message", async () => {
    const response = await rawRequest(
      gateway.url,
      'POST',
      '/v1/chat/completions',
      { model: REMOTE, messages: [{ role: 'user', content: 'once upon a time '.repeat(1500) }], max_tokens: 4 },
      { authorization: `Bearer ${key}` },
    );
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.match(response.body.error.message, /context length/);
  });

  test('tokenize answers for the local model and refuses the upstream one', async () => {
    const local = await rawRequest(gateway.url, 'POST', '/tokenize', { model: STORIES, content: 'Once' }, { authorization: `Bearer ${key}` });
    assert.equal(local.status, 200);
    const remote = await rawRequest(gateway.url, 'POST', '/tokenize', { model: REMOTE, content: 'Once' }, { authorization: `Bearer ${key}` });
    assert.equal(remote.status, 400);
    assert.equal(remote.body.error.code, 'model_not_supported');
  });
});

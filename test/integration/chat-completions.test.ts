import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/** stories-260k never ends a story with end-of-sequence, so greedy output always runs to max_tokens. */
const PROMPT = [{ role: 'user' as const, content: 'Once upon a time' }];
/** Llama-2 vocabularies (both bundled models): end of sequence. */
const EOS = 2;

let server: TestServer;
let client: OpenAI;

async function greedy(maxTokens: number, extra: Record<string, unknown> = {}): Promise<OpenAI.ChatCompletion> {
  return client.chat.completions.create({
    model: STORIES,
    messages: PROMPT,
    temperature: 0,
    max_tokens: maxTokens,
    ...extra,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
}

/** The id of the token whose text is `text` (the last token of its tokenization, checked by detokenizing). */
async function tokenIdOf(text: string): Promise<number> {
  const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { model: STORIES, content: text });
  const id = tokenized.body.tokens.at(-1) as number;
  const detokenized = await rawRequest(server.url, 'POST', '/detokenize', { model: STORIES, tokens: [id] });
  assert.equal(detokenized.body.content.trim(), text.trim(), `token ${id} should be '${text}'`);
  return id;
}

before(async () => {
  server = await startTestServer();
  client = server.client;
});

after(async () => {
  await server?.close();
});

describe('POST /v1/chat/completions', () => {
  test('plain: content, finish_reason, usage, id and x-request-id', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: STORIES, messages: PROMPT, temperature: 0, max_tokens: 12 })
      .withResponse();
    const requestId = response.headers.get('x-request-id');
    assert.match(requestId ?? '', /^req_[0-9a-f]+$/);
    assert.equal(data.id, `chatcmpl-${requestId}`);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, STORIES);
    assert.equal(typeof data.created, 'number');
    assert.equal(data.choices.length, 1);
    const [choice] = data.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, 'assistant');
    assert.equal(typeof choice.message.content, 'string');
    assert.ok(choice.message.content!.length > 0);
    assert.equal(choice.finish_reason, 'length');
    assert.equal(choice.logprobs, null);
    const usage = data.usage!;
    assert.ok(usage.prompt_tokens > 0);
    assert.equal(usage.completion_tokens, 12);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    const cached = usage.prompt_tokens_details?.cached_tokens;
    assert.equal(typeof cached, 'number');
    assert.ok(cached! >= 0 && cached! < usage.prompt_tokens);
  });

  test('a repeated prompt reuses its cached prefix', async () => {
    await greedy(2);
    const second = await greedy(2);
    assert.ok(second.usage!.prompt_tokens_details!.cached_tokens! > 0);
  });

  test('streamed: role first, content deltas, finish chunk, usage chunk, [DONE]', async () => {
    const whole = await greedy(10);
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    assert.ok(chunks.length >= 3);
    const ids = new Set(chunks.map((chunk) => chunk.id));
    assert.equal(ids.size, 1);
    assert.match([...ids][0], /^chatcmpl-req_/);
    for (const chunk of chunks) assert.equal(chunk.object, 'chat.completion.chunk');

    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage!.completion_tokens, 10);
    assert.equal(usageChunk.usage!.total_tokens, usageChunk.usage!.prompt_tokens + 10);
    assert.equal(usageChunk.usage!.prompt_tokens, whole.usage!.prompt_tokens);

    const finishChunk = chunks.at(-2)!;
    assert.equal(finishChunk.choices[0].finish_reason, 'length');
    for (const chunk of chunks.slice(0, -2)) {
      assert.equal(chunk.choices[0].finish_reason, null);
      assert.equal(chunk.usage, null);
    }
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, whole.choices[0].message.content);
  });

  test('streamed without include_usage sends no usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_tokens: 4,
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks) {
      assert.equal(chunk.choices.length, 1);
      assert.equal(chunk.usage, undefined);
    }
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'length');
  });

  test('n > 1: n indexed choices, completion tokens summed, prompt counted once', async () => {
    const single = await greedy(6);
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 1,
      seed: 7,
      n: 3,
      max_tokens: 6,
    });
    assert.deepEqual(
      response.choices.map((choice) => choice.index),
      [0, 1, 2],
    );
    for (const choice of response.choices) {
      assert.equal(choice.finish_reason, 'length');
      assert.ok(choice.message.content!.length > 0);
    }
    assert.equal(response.usage!.completion_tokens, 18);
    assert.equal(response.usage!.prompt_tokens, single.usage!.prompt_tokens);
    assert.equal(response.usage!.total_tokens, single.usage!.prompt_tokens + 18);
  });

  test('n > 1 streamed: every index gets its own finish chunk', async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 1,
      seed: 7,
      n: 2,
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    const finished = new Map<number, string>();
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) if (choice.finish_reason) finished.set(choice.index, choice.finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    assert.deepEqual([...finished.entries()].sort(), [
      [0, 'length'],
      [1, 'length'],
    ]);
    assert.equal(usage!.completion_tokens, 10);
  });

  test('stop: the stop text is cut and finish_reason is stop', async () => {
    const full = (await greedy(40)).choices[0].message.content!;
    // A stretch from the middle of the greedy output; the output must end right before its first occurrence.
    const stop = full.slice(15, 21);
    assert.equal(stop.length, 6);
    const expected = full.slice(0, full.indexOf(stop));
    const stopped = await greedy(40, { stop });
    assert.equal(stopped.choices[0].finish_reason, 'stop');
    assert.equal(stopped.choices[0].message.content, expected);
    assert.ok(!stopped.choices[0].message.content!.includes(stop));
    assert.ok(stopped.usage!.completion_tokens < 40);

    const streamed = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_tokens: 40,
      stop: ['never appears here', stop],
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of streamed) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, expected);
    assert.equal(finish, 'stop');
  });

  test('max_tokens: finish_reason length with exactly max_tokens tokens', async () => {
    const response = await greedy(7);
    assert.equal(response.choices[0].finish_reason, 'length');
    assert.equal(response.usage!.completion_tokens, 7);
    const viaNewName = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_completion_tokens: 7,
    });
    assert.equal(viaNewName.usage!.completion_tokens, 7);
    assert.equal(viaNewName.choices[0].message.content, response.choices[0].message.content);
  });

  test('seed: same seed and parameters give the same sampled output', async () => {
    const sample = async (seed: number) =>
      (
        await client.chat.completions.create({
          model: STORIES,
          messages: PROMPT,
          temperature: 1,
          seed,
          max_tokens: 24,
        })
      ).choices[0].message.content;
    const first = await sample(1234);
    const second = await sample(1234);
    assert.equal(second, first);
    const others = await Promise.all([sample(1), sample(2), sample(3)]);
    // Different seeds may collide by chance, but not all three.
    assert.ok(others.some((text) => text !== first));
  });

  test('greedy: temperature 0 is deterministic, whatever the seed', async () => {
    const first = await greedy(20, { seed: 1 });
    const second = await greedy(20, { seed: 99 });
    assert.equal(second.choices[0].message.content, first.choices[0].message.content);
  });

  test('logprobs and top_logprobs', async () => {
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_tokens: 5,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = response.choices[0].logprobs!.content!;
    assert.equal(content.length, 5);
    for (const entry of content) {
      assert.equal(typeof entry.token, 'string');
      assert.ok(entry.logprob <= 0);
      assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, 'utf8')]);
      assert.equal(entry.top_logprobs.length, 3);
      for (const top of entry.top_logprobs) {
        assert.equal(typeof top.token, 'string');
        assert.ok(top.logprob <= 0);
      }
      const sorted = [...entry.top_logprobs].sort((a, b) => b.logprob - a.logprob);
      assert.deepEqual(entry.top_logprobs, sorted);
      // Greedy picks the most likely token.
      assert.equal(entry.top_logprobs[0].token, entry.token);
      assert.equal(entry.top_logprobs[0].logprob, entry.logprob);
    }

    const withoutTop = await greedy(3, { logprobs: true });
    for (const entry of withoutTop.choices[0].logprobs!.content!) assert.deepEqual(entry.top_logprobs, []);
  });

  test(
    'logprob tokens concatenate to the content',
    async () => {
      const response = await greedy(8, { logprobs: true, top_logprobs: 1 });
      const tokens = response.choices[0].logprobs!.content!.map((entry) => entry.token);
      assert.equal(tokens.join(''), response.choices[0].message.content);
    },
  );

  test('logprobs streamed: one entry per token in the deltas', async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages: PROMPT,
      temperature: 0,
      max_tokens: 4,
      logprobs: true,
      top_logprobs: 2,
      stream: true,
    });
    let entries = 0;
    for await (const chunk of stream) {
      for (const entry of chunk.choices[0]?.logprobs?.content ?? []) {
        entries++;
        assert.ok(entry.logprob <= 0);
        assert.equal(entry.top_logprobs.length, 2);
      }
    }
    assert.equal(entries, 4);
  });

  test('content as an array of text parts equals the same text as a string', async () => {
    const asString = await greedy(10);
    const asParts = await client.chat.completions.create({
      model: STORIES,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Once upon ' },
            { type: 'text', text: 'a time' },
          ],
        },
      ],
      temperature: 0,
      max_tokens: 10,
    });
    assert.equal(asParts.choices[0].message.content, asString.choices[0].message.content);
    assert.equal(asParts.usage!.prompt_tokens, asString.usage!.prompt_tokens);
  });

  test('roles: system, developer, user, assistant, tool', async () => {
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: [
        { role: 'system', content: 'You tell stories.' },
        { role: 'developer', content: 'Keep them short.' },
        { role: 'user', content: 'Tell me about a cat.' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'find_cat', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'The cat is named Tom.' },
        { role: 'assistant', content: 'Tom was a cat.' },
        { role: 'user', content: 'Go on.' },
      ],
      temperature: 0,
      max_tokens: 5,
    });
    assert.equal(response.choices[0].finish_reason, 'length');
    assert.equal(response.usage!.completion_tokens, 5);

    // developer is rendered as system.
    const asSystem = await greedy(1, { messages: [{ role: 'system', content: 'Be kind.' }, ...PROMPT] });
    const asDeveloper = await greedy(1, { messages: [{ role: 'developer', content: 'Be kind.' }, ...PROMPT] });
    assert.equal(asDeveloper.usage!.prompt_tokens, asSystem.usage!.prompt_tokens);
    assert.ok(asSystem.usage!.prompt_tokens > (await greedy(1)).usage!.prompt_tokens);
  });

  test('min_tokens holds off end-of-sequence; ignore_eos runs to max_tokens', async () => {
    // A large bias on end-of-sequence makes the model stop at once ...
    const eager = await greedy(8, { logit_bias: { [EOS]: 100 } });
    assert.equal(eager.choices[0].finish_reason, 'stop');
    assert.equal(eager.usage!.completion_tokens, 0);
    // ... unless min_tokens asks for more first ...
    const atLeast = await greedy(8, { logit_bias: { [EOS]: 100 }, min_tokens: 5 });
    assert.equal(atLeast.choices[0].finish_reason, 'stop');
    assert.equal(atLeast.usage!.completion_tokens, 5);
    // ... or ignore_eos ignores it to the end.
    const ignoring = await greedy(8, { logit_bias: { [EOS]: 100 }, ignore_eos: true });
    assert.equal(ignoring.choices[0].finish_reason, 'length');
    assert.equal(ignoring.usage!.completion_tokens, 8);
    const plain = await greedy(8, { ignore_eos: true });
    assert.equal(plain.usage!.completion_tokens, 8);
    assert.equal(ignoring.choices[0].message.content, plain.choices[0].message.content);
  });

  test('logit_bias: +100 forces a token, -100 bans the greedy one', async () => {
    const once = await tokenIdOf('Once');
    const forced = await greedy(6, { logit_bias: { [once]: 100 } });
    assert.deepEqual(forced.choices[0].message.content!.trim().split(/\s+/), new Array(6).fill('Once'));

    const unbiased = await greedy(4, { logprobs: true });
    const first = unbiased.choices[0].logprobs!.content![0].token;
    const banned = await greedy(4, { logprobs: true, logit_bias: { [await tokenIdOf(first)]: -100 } });
    assert.notEqual(banned.choices[0].logprobs!.content![0].token, first);
    assert.notEqual(banned.choices[0].message.content, unbiased.choices[0].message.content);
  });

  test('the other model answers too', async () => {
    const response = await client.chat.completions.create({
      model: 'llama-2-tiny-random',
      messages: PROMPT,
      temperature: 0,
      max_tokens: 5,
    });
    assert.equal(response.model, 'llama-2-tiny-random');
    assert.equal(response.usage!.completion_tokens, 5);
  });

  test('random tokens (byte fallback included) stream to the same text as the whole response', async () => {
    const request = { model: 'llama-2-tiny-random', messages: PROMPT, temperature: 1, seed: 5, max_tokens: 40 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, whole.choices[0].message.content);
  });

  test('an SSE stream is plain text/event-stream ending in [DONE]', async () => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: STORIES, messages: PROMPT, max_tokens: 2, stream: true }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
    const body = await response.text();
    assert.ok(body.trimEnd().endsWith('data: [DONE]'));
  });

  test('streams honour `Connection: close`: back-to-back requests on fresh connections all succeed', async () => {
    // A client that asks to close must not be told keep-alive: it would reuse the socket, and Node refuses a second
    // request on a connection that said close (a 400 outside the API's error shape).
    const agent = new http.Agent({ keepAlive: false, maxSockets: 4 });
    const body = JSON.stringify({ model: STORIES, messages: PROMPT, max_tokens: 2, stream: true });
    const once = () =>
      new Promise<{ status: number; connection: string | undefined; text: string }>((resolve, reject) => {
        const request = http.request(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' },
        });
        request.on('error', reject);
        request.on('response', (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, text }));
        });
        request.end(body);
      });
    const clients = Array.from({ length: 4 }, async () => {
      const results = [];
      for (let index = 0; index < 6; index++) results.push(await once());
      return results;
    });
    const results = (await Promise.all(clients)).flat();
    agent.destroy();
    for (const result of results) {
      assert.equal(result.status, 200, result.text);
      assert.equal(result.connection, 'close');
      assert.ok(result.text.trimEnd().endsWith('data: [DONE]'));
    }
  });
});

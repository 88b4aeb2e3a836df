import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { schemaCorpus, type CorpusSchema } from '../fixtures/schema-corpus.js';
import { startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/**
 * response_format, grammar and guided decoding against the tiny models. stories-260k writes story text into
 * strings but closes them; the grammar guarantees the rest. Concurrent requests share batches, so greedy outputs may differ from run to run; every one must validate.
 */
const MESSAGES = [{ role: 'user' as const, content: 'Describe it as JSON.' }];
/** Enough for every corpus output to close (the longest takes about 100 tokens). */
const MAX_TOKENS = 400;

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

let server: TestServer;
let client: OpenAI;

function schemaFormat(entry: CorpusSchema) {
  return { type: 'json_schema' as const, json_schema: { name: entry.name, schema: entry.schema, strict: true } };
}

function assertValid(entry: CorpusSchema, content: string | null | undefined): void {
  assert.equal(typeof content, 'string');
  const value = JSON.parse(content!);
  const validate = ajv.compile(entry.schema);
  assert.ok(validate(value), `${entry.name}: ${content} -> ${JSON.stringify(validate.errors)}`);
}

async function complete(entry: CorpusSchema): Promise<{ content: string | null; finish: string }> {
  const response = await client.chat.completions.create({
    model: STORIES,
    messages: MESSAGES,
    max_tokens: MAX_TOKENS,
    temperature: 0,
    seed: 7,
    response_format: schemaFormat(entry),
  });
  return { content: response.choices[0].message.content, finish: response.choices[0].finish_reason };
}

async function completeStreamed(entry: CorpusSchema): Promise<{ content: string; finish: string | null; deltas: number }> {
  const stream = await client.chat.completions.create({
    model: STORIES,
    messages: MESSAGES,
    max_tokens: MAX_TOKENS,
    temperature: 0,
    seed: 7,
    stream: true,
    response_format: schemaFormat(entry),
  });
  let content = '';
  let finish: string | null = null;
  let deltas = 0;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.content) {
      content += choice.delta.content;
      deltas++;
    }
    finish = choice.finish_reason ?? finish;
  }
  return { content, finish, deltas };
}

before(async () => {
  server = await startTestServer();
  client = server.client;
});

after(async () => {
  await server?.close();
});

describe('response_format json_schema: the schema corpus', () => {
  // All requests start at once (the model has 8 sequences); each test awaits its own.
  let plain: Map<string, Promise<{ content: string | null; finish: string }>>;
  let streamed: Map<string, Promise<{ content: string; finish: string | null; deltas: number }>>;
  before(() => {
    plain = new Map(schemaCorpus.map((entry) => [entry.name, complete(entry)]));
    streamed = new Map(schemaCorpus.map((entry) => [entry.name, completeStreamed(entry)]));
    for (const promise of [...plain.values(), ...streamed.values()]) promise.catch(() => undefined);
  });

  test('the corpus holds at least 25 schemas', () => {
    assert.ok(schemaCorpus.length >= 25);
  });

  for (const entry of schemaCorpus) {
    test(`${entry.name}: the output validates`, async () => {
      const { content, finish } = await plain.get(entry.name)!;
      assert.equal(finish, 'stop', `${entry.name} ended by ${finish}: ${content}`);
      assertValid(entry, content);
    });

    test(`${entry.name}, streamed: the deltas join into a valid output`, async () => {
      const { content, finish, deltas } = await streamed.get(entry.name)!;
      assert.equal(finish, 'stop', `${entry.name} ended by ${finish}: ${content}`);
      assert.ok(deltas >= 2, 'the JSON arrives in pieces');
      assertValid(entry, content);
    });
  }
});

describe('response_format json_object and friends', () => {
  /** stories-260k never writes `}` by itself; a bias makes the object close, the grammar keeps it JSON. */
  let closeBias: Record<string, number>;
  before(async () => {
    const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { model: STORIES, content: '}' });
    closeBias = { [String(tokenized.body.tokens.at(-1))]: 8 };
  });

  for (const stream of [false, true]) {
    test(`json_object${stream ? ', streamed' : ''}: one JSON object`, async () => {
      const body = {
        model: STORIES,
        messages: MESSAGES,
        max_tokens: MAX_TOKENS,
        temperature: 0,
        logit_bias: closeBias,
        response_format: { type: 'json_object' as const },
      };
      let content = '';
      let finish: string | null = null;
      if (stream) {
        for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
          content += chunk.choices[0]?.delta.content ?? '';
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
      } else {
        const response = await client.chat.completions.create(body);
        content = response.choices[0].message.content!;
        finish = response.choices[0].finish_reason;
      }
      assert.equal(finish, 'stop', content);
      const value = JSON.parse(content);
      assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), content);
    });
  }

  test('a schema on the random model (32000-token vocabulary): still valid JSON', async () => {
    const entry = schemaCorpus.find((candidate) => candidate.name === 'discriminated-any-of')!;
    const response = await client.chat.completions.create({
      model: TINY_RANDOM,
      messages: MESSAGES,
      max_tokens: 100,
      temperature: 0,
      response_format: schemaFormat(entry),
    });
    assert.equal(response.choices[0].finish_reason, 'stop');
    assertValid(entry, response.choices[0].message.content);
  });

  test('max_tokens cuts the JSON short: finish_reason length, as OpenAI', async () => {
    const entry = schemaCorpus[0];
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: MESSAGES,
      max_tokens: 4,
      temperature: 0,
      response_format: schemaFormat(entry),
    });
    assert.equal(response.choices[0].finish_reason, 'length');
    assert.equal(response.usage!.completion_tokens, 4);
    assert.throws(() => JSON.parse(response.choices[0].message.content!));
  });

  test('ignore_eos and min_tokens yield to the grammar: the JSON ends the output', async () => {
    const entry = schemaCorpus.find((candidate) => candidate.name === 'boolean-only')!;
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: MESSAGES,
      max_tokens: 50,
      temperature: 0,
      response_format: schemaFormat(entry),
      ignore_eos: true,
      min_tokens: 40,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(response.choices[0].finish_reason, 'stop');
    assertValid(entry, response.choices[0].message.content);
  });

  test('logit_bias cannot leave the grammar without a token (banned end-of-sequence, banned "{")', async () => {
    const entry = schemaCorpus.find((candidate) => candidate.name === 'boolean-only')!;
    for (const model of [STORIES, TINY_RANDOM]) {
      const brace = (await rawRequest(server.url, 'POST', '/tokenize', { model, content: 'a{' })).body.tokens.at(-1);
      for (const bias of [{ '2': -100 }, { [String(brace)]: -100 }]) {
        const response = await client.chat.completions.create({
          model,
          messages: MESSAGES,
          max_tokens: 30,
          temperature: 0,
          logit_bias: bias,
          response_format: schemaFormat(entry),
        });
        assert.equal(response.choices[0].finish_reason, 'stop', `${model} ${JSON.stringify(bias)}`);
        assertValid(entry, response.choices[0].message.content);
      }
    }
  });

  test('n = 3 under a schema: every choice validates', async () => {
    const entry = schemaCorpus.find((candidate) => candidate.name === 'integer-range')!;
    const response = await client.chat.completions.create({
      model: STORIES,
      messages: MESSAGES,
      max_tokens: MAX_TOKENS,
      n: 3,
      seed: 1,
      response_format: schemaFormat(entry),
    });
    assert.equal(response.choices.length, 3);
    for (const choice of response.choices) assertValid(entry, choice.message.content);
  });
});

describe('the openai client structured-output helpers', () => {
  const Story = z.object({
    title: z.string().max(30),
    pages: z.number().int().min(1).max(500),
    rating: z.number(),
    genre: z.enum(['fable', 'mystery', 'poem']),
    id: z.string().uuid(),
    subtitle: z.string().max(12).nullable(),
    tags: z.array(z.string().max(8)).max(3),
    author: z.object({ name: z.string().max(20), born: z.number().int().nullable() }),
  });

  test('zodResponseFormat with chat.completions.parse(): message.parsed passes the zod schema', async () => {
    const completion = await client.chat.completions.parse({
      model: STORIES,
      messages: [{ role: 'user', content: 'Tell me about a story book.' }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      response_format: zodResponseFormat(Story, 'story'),
    });
    const message = completion.choices[0].message;
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.ok(message.parsed !== null);
    assert.deepEqual(Story.parse(message.parsed), message.parsed);
  });

  test('zodResponseFormat streamed with chat.completions.stream(): the final message is parsed', async () => {
    const stream = client.chat.completions.stream({
      model: STORIES,
      messages: [{ role: 'user', content: 'Tell me about a story book.' }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      response_format: zodResponseFormat(Story, 'story'),
    });
    const completion = await stream.finalChatCompletion();
    assert.ok(completion.choices[0].message.parsed !== null);
    Story.parse(completion.choices[0].message.parsed);
  });
});

describe('completions: response_format, grammar and guided decoding', () => {
  test('response_format json_schema on /v1/completions', async () => {
    const entry = schemaCorpus.find((candidate) => candidate.name === 'nested-object')!;
    const response = await rawRequest(server.url, 'POST', '/v1/completions', {
      model: STORIES,
      prompt: 'Once upon a time',
      max_tokens: MAX_TOKENS,
      temperature: 0,
      response_format: schemaFormat(entry),
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.equal(response.body.choices[0].finish_reason, 'stop');
    assertValid(entry, response.body.choices[0].text);
  });

  test('grammar (GBNF) on completions, streamed', async () => {
    const grammar = 'root ::= answer "." \nanswer ::= "yes" | "no" | "maybe"';
    const stream = await client.completions.create({
      model: STORIES,
      prompt: 'Once upon a time',
      max_tokens: 20,
      stream: true,
      grammar,
    } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.match(text, /^(yes|no|maybe)\.$/);
    assert.equal(finish, 'stop');
  });

  for (const model of [STORIES, TINY_RANDOM]) {
    test(`guided_regex: the whole output matches (${model})`, async () => {
      const pattern = '[A-Z]{2}-\\d{3}( (alpha|beta))?';
      const response = await client.chat.completions.create({
        model,
        messages: MESSAGES,
        max_tokens: 30,
        guided_regex: pattern,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      assert.match(response.choices[0].message.content!, new RegExp(`^(?:${pattern})$`));
      assert.equal(response.choices[0].finish_reason, 'stop');
    });
  }

  test('guided_choice: the output is one of the choices', async () => {
    const choices = ['red', 'green', 'light blue'];
    const response = await rawRequest(server.url, 'POST', '/v1/completions', {
      model: STORIES,
      prompt: 'The sky is',
      max_tokens: 10,
      n: 4,
      guided_choice: choices,
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    for (const choice of response.body.choices) assert.ok(choices.includes(choice.text), choice.text);
  });
});

describe('constraint errors are 400s that say what is wrong', () => {
  test('an unsupported keyword: named with its path, also when streamed', async () => {
    for (const stream of [false, true]) {
      const response = await rawRequest(server.url, 'POST', '/v1/chat/completions', {
        model: STORIES,
        messages: MESSAGES,
        stream,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'object', properties: { age: { type: 'integer', multipleOf: 5 } } } },
        },
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.error.code, 'unsupported_schema_keyword');
      assert.equal(response.body.error.param, 'response_format.json_schema.schema.properties.age.multipleOf');
      assert.match(response.body.error.message, /'multipleOf'/);
    }
  });

  test('an invalid schema', async () => {
    const response = await rawRequest(server.url, 'POST', '/v1/chat/completions', {
      model: STORIES,
      messages: MESSAGES,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'text' } } } } },
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'invalid_schema');
    assert.equal(response.body.error.param, 'response_format.json_schema.schema.properties.a.type');
  });

  test("a bad grammar: the parser's message", async () => {
    const response = await rawRequest(server.url, 'POST', '/v1/completions', {
      model: STORIES,
      prompt: 'Hi',
      grammar: 'root ::= "a" b\nb ::= "b" | (c',
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'invalid_grammar');
    assert.equal(response.body.error.param, 'grammar');
    assert.match(response.body.error.message, /line 2, column \d+: expecting '\)'/);
  });

  test('the server keeps serving after them', async () => {
    const entry = schemaCorpus[0];
    const response = await complete(entry);
    assertValid(entry, response.content);
  });
});

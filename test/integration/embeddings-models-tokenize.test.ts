import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

let server: TestServer;
let client: OpenAI;

before(async () => {
  server = await startTestServer();
  client = server.client;
});

after(async () => {
  await server?.close();
});

function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
}

function assertClose(actual: readonly number[], expected: readonly number[], tolerance = 1e-4): void {
  assert.equal(actual.length, expected.length);
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - expected[index])));
  assert.ok(worst <= tolerance, `vectors differ by up to ${worst}`);
}

/** Embeds with raw fetch, so that the encoding format is exactly what is asked (the client asks for base64). */
async function embed(input: unknown, encodingFormat: 'float' | 'base64' = 'float') {
  const response = await rawRequest(server.url, 'POST', '/v1/embeddings', {
    model: STORIES,
    input,
    encoding_format: encodingFormat,
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body as {
    object: string;
    model: string;
    data: Array<{ object: string; index: number; embedding: number[] | string }>;
    usage: { prompt_tokens: number; total_tokens: number };
  };
}

describe('POST /v1/embeddings', () => {
  test('one string: one L2-normalized vector and usage', async () => {
    const body = await embed('Once upon a time');
    assert.equal(body.object, 'list');
    assert.equal(body.model, STORIES);
    assert.equal(body.data.length, 1);
    const [item] = body.data;
    assert.equal(item.object, 'embedding');
    assert.equal(item.index, 0);
    const vector = item.embedding as number[];
    assert.ok(vector.length > 0);
    assert.ok(vector.every((value) => Number.isFinite(value)));
    assert.ok(Math.abs(norm(vector) - 1) < 1e-6);
    assert.ok(body.usage.prompt_tokens > 0);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens);
  });

  test('an array of strings: one vector each, in order, equal to each alone', async () => {
    const inputs = ['Once upon a time', 'The cat sat.', 'Tom ran home'];
    const body = await embed(inputs);
    assert.deepEqual(
      body.data.map((item) => item.index),
      [0, 1, 2],
    );
    const alone = await Promise.all(inputs.map((input) => embed(input)));
    body.data.forEach((item, index) => {
      assert.ok(Math.abs(norm(item.embedding as number[]) - 1) < 1e-6);
      assertClose(item.embedding as number[], alone[index].data[0].embedding as number[]);
    });
    assert.equal(
      body.usage.prompt_tokens,
      alone.reduce((sum, one) => sum + one.usage.prompt_tokens, 0),
    );
    assert.notDeepEqual(body.data[0].embedding, body.data[1].embedding);
  });

  test('token arrays equal the text they tokenize to', async () => {
    const text = 'Once upon a time';
    const tokens = (await rawRequest(server.url, 'POST', '/tokenize', { content: text, add_special: true })).body.tokens;
    const fromText = await embed(text);
    const fromTokens = await embed(tokens);
    assert.equal(fromTokens.data.length, 1);
    assertClose(fromTokens.data[0].embedding as number[], fromText.data[0].embedding as number[]);
    assert.equal(fromTokens.usage.prompt_tokens, tokens.length);
    const fromTokenArrays = await embed([tokens, tokens.slice(0, 2)]);
    assert.equal(fromTokenArrays.data.length, 2);
    assert.equal(fromTokenArrays.usage.prompt_tokens, tokens.length + 2);
  });

  test('base64 decodes to the same float32 values as float', async () => {
    const asFloat = await embed(['Once upon a time', 'Tom ran home'], 'float');
    const asBase64 = await embed(['Once upon a time', 'Tom ran home'], 'base64');
    asBase64.data.forEach((item, index) => {
      assert.equal(typeof item.embedding, 'string');
      const bytes = Buffer.from(item.embedding as string, 'base64');
      const decoded = [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)];
      const expected = (asFloat.data[index].embedding as number[]).map((value) => Math.fround(value));
      assert.deepEqual(decoded, expected);
    });
  });

  test('the official client (base64 under the hood) gets float vectors', async () => {
    const response = await client.embeddings.create({ model: STORIES, input: 'Once upon a time' });
    const direct = await embed('Once upon a time');
    const expected = (direct.data[0].embedding as number[]).map((value) => Math.fround(value));
    assert.deepEqual(response.data[0].embedding, expected);
  });
});

describe('GET /v1/models', () => {
  test('lists both models', async () => {
    const page = await client.models.list();
    const ids = page.data.map((model) => model.id).sort();
    assert.deepEqual(ids, [TINY_RANDOM, STORIES].sort());
    for (const model of page.data) {
      assert.equal(model.object, 'model');
      assert.equal(typeof model.created, 'number');
      assert.equal(typeof model.owned_by, 'string');
    }
  });

  test('retrieves one model, with its context length', async () => {
    const model = await client.models.retrieve(STORIES);
    assert.equal(model.id, STORIES);
    assert.equal(model.object, 'model');
    assert.equal((model as unknown as { max_model_len: number }).max_model_len, 2048);
  });

  test('an unknown model is 404 model_not_found', async () => {
    await assert.rejects(client.models.retrieve('no-such-model'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal(error.code, 'model_not_found');
      return true;
    });
  });
});

describe('POST /tokenize and /detokenize', () => {
  test('round trip, model optional', async () => {
    const content = 'Once upon a time, Lily saw a cat.';
    const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { content });
    assert.equal(tokenized.status, 200);
    const tokens = tokenized.body.tokens as number[];
    assert.ok(tokens.length > 0 && tokens.every((token) => Number.isInteger(token)));
    const withModel = await rawRequest(server.url, 'POST', '/tokenize', { content, model: STORIES });
    assert.deepEqual(withModel.body, tokenized.body);
    const detokenized = await rawRequest(server.url, 'POST', '/detokenize', { tokens });
    assert.equal(detokenized.status, 200);
    assert.deepEqual(detokenized.body, { content });
  });

  test('add_special prepends the beginning-of-sequence token', async () => {
    const plain = await rawRequest(server.url, 'POST', '/tokenize', { content: 'Hello' });
    const special = await rawRequest(server.url, 'POST', '/tokenize', { content: 'Hello', add_special: true });
    assert.deepEqual(special.body.tokens, [1, ...plain.body.tokens]);
  });

  test('each model uses its own vocabulary', async () => {
    const content = 'Once upon a time';
    const stories = await rawRequest(server.url, 'POST', '/tokenize', { content, model: STORIES });
    const tiny = await rawRequest(server.url, 'POST', '/tokenize', { content, model: TINY_RANDOM });
    assert.notDeepEqual(tiny.body.tokens, stories.body.tokens);
    const back = await rawRequest(server.url, 'POST', '/detokenize', { model: TINY_RANDOM, tokens: tiny.body.tokens });
    assert.equal(back.body.content, content);
  });
});

describe('health', () => {
  test('GET /health is 200', async () => {
    const response = await rawRequest(server.url, 'GET', '/health');
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { status: 'ok' });
  });

  test('GET /ready is 200 with the models', async () => {
    const response = await rawRequest(server.url, 'GET', '/ready');
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'ready');
    assert.deepEqual([...response.body.models].sort(), [TINY_RANDOM, STORIES].sort());
  });
});

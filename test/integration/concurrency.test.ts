import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestServer, STORIES, testConfig, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';

/** The catalog's settings of one model, with overrides. */
function modelWith(id: string, overrides: Record<string, unknown>): Record<string, unknown> {
  const model = testConfig().models.find((candidate) => candidate.id === id);
  assert.ok(model, `no model ${id} in the catalog`);
  return { ...model, prices: { ...model.prices }, ...overrides };
}

/**
 * A slow request: the random model with 20 top logprobs per token over its 32k vocabulary runs at tens of tokens per
 * second on a small CPU, so 3,000 tokens take minutes. Whatever ends sooner was cut short.
 */
const SLOW_CHAT: WithExtras<OpenAI.ChatCompletionCreateParamsNonStreaming> = {
  model: TINY_RANDOM,
  messages: [{ role: 'user' as const, content: 'Tell me a long story.' }],
  temperature: 0,
  max_tokens: 3000,
  ignore_eos: true,
  logprobs: true,
  top_logprobs: 20,
};

/** vLLM's extra sampling fields, which Tokenmill accepts too. */
type WithExtras<Params> = Params & { ignore_eos?: boolean; min_tokens?: number };

/** Resolves once `check` holds, polling; rejects after `timeoutMs`. */
async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('concurrency on the default catalog (8 sequences)', () => {
  let server: TestServer;
  let client: OpenAI;

  before(async () => {
    server = await startTestServer({ models: [modelWith(STORIES, {})] });
    client = server.client;
  });

  after(async () => {
    await server?.close();
  });

  test('16 concurrent streams all complete with correct usage', async () => {
    const maxTokens = 12;
    const run = async (index: number) => {
      const request: WithExtras<OpenAI.ChatCompletionCreateParamsStreaming> = {
        model: STORIES,
        messages: [{ role: 'user', content: `Story number ${index}` }],
        temperature: 1,
        seed: index,
        max_tokens: maxTokens,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      };
      const stream = await client.chat.completions.create(request);
      let contentChunks = 0;
      let text = '';
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      let id = '';
      for await (const chunk of stream) {
        id = chunk.id;
        const delta = chunk.choices[0]?.delta.content;
        if (delta) {
          contentChunks++;
          text += delta;
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      return { id, contentChunks, text, finish, usage };
    };
    const results = await Promise.all(Array.from({ length: 16 }, (_, index) => run(index)));
    assert.equal(new Set(results.map((result) => result.id)).size, 16);
    for (const result of results) {
      assert.equal(result.finish, 'length');
      assert.ok(result.usage, 'usage chunk present');
      assert.equal(result.usage.completion_tokens, maxTokens);
      assert.equal(result.usage.total_tokens, result.usage.prompt_tokens + maxTokens);
      // One chunk per token, except tokens whose text is held back (partial characters, possible stop text).
      assert.ok(result.contentChunks >= 1 && result.contentChunks <= maxTokens);
      assert.ok(result.text.length > 0);
    }
    assert.deepEqual(server.server.engine.load(), [{ model: STORIES, queued: 0, busy: 0 }]);
  });

  test('batch invariance: a seeded request alone and among 7 others', async () => {
    const tries = 10;
    const target: WithExtras<OpenAI.ChatCompletionCreateParamsNonStreaming> = {
      model: STORIES,
      messages: [{ role: 'user', content: 'Once upon a time' }],
      temperature: 1,
      seed: 42,
      max_tokens: 32,
      ignore_eos: true,
    };
    const sample = async (request: OpenAI.ChatCompletionCreateParamsNonStreaming) => {
      const response = await client.chat.completions.create(request);
      assert.equal(response.usage!.completion_tokens, request.max_tokens);
      return response.choices[0].message.content!;
    };
    let aloneMatches = 0;
    let batchMatches = 0;
    for (let attempt = 0; attempt < tries; attempt++) {
      const alone = await sample(target);
      const aloneAgain = await sample(target);
      const others = Array.from({ length: 7 }, (_, index) =>
        sample({ ...target, messages: [{ role: 'user', content: `Tom and his dog, part ${attempt * 7 + index}` }], seed: 1000 + index }),
      );
      const [batched] = await Promise.all([sample(target), ...others]);
      if (aloneAgain === alone) aloneMatches++;
      if (batched === alone) batchMatches++;
    }
    console.log(
      `batch invariance (stories-260k, seed 42, temperature 1, 32 tokens): alone vs alone ${aloneMatches}/${tries}, ` +
        `alone vs among 7 others ${batchMatches}/${tries}`,
    );
    // llama.cpp does not promise bit-identical logits across batch shapes, so only the measurement is asserted.
    assert.ok(aloneMatches >= 0 && batchMatches >= 0);
  });
});

describe('one sequence, a queue of one', () => {
  let server: TestServer;
  let client: OpenAI;

  before(async () => {
    server = await startTestServer({ models: [modelWith(TINY_RANDOM, { sequences: 1, max_queue: 1, embeddings: false })] });
    client = server.client;
  });

  after(async () => {
    await server?.close();
  });

  const idle = () => server.server.engine.load()[0].busy === 0 && server.server.engine.load()[0].queued === 0;

  test('a client that disconnects mid-stream frees its sequence', async () => {
    const controller = new AbortController();
    const slowStream: WithExtras<OpenAI.ChatCompletionCreateParamsStreaming> = { ...SLOW_CHAT, stream: true };
    const stream = await client.chat.completions.create(slowStream, { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content !== undefined) chunks++;
        if (chunks === 3) controller.abort();
      }
    } catch (error) {
      // The client ends the stream quietly on abort, or throws its abort error.
      if (!(error instanceof OpenAI.APIUserAbortError)) throw error;
    }
    assert.equal(chunks, 3);
    // The only sequence is free again long before the 3,000 tokens could have been generated ...
    await waitFor(idle, 15_000, 'the sequence to be freed');
    // ... and the next request is served on it.
    const nextRequest: WithExtras<OpenAI.ChatCompletionCreateParamsNonStreaming> = {
      model: TINY_RANDOM,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 4,
      ignore_eos: true,
    };
    const next = await client.chat.completions.create(nextRequest, { timeout: 15_000 });
    assert.equal(next.usage!.completion_tokens, 4);
  });

  test('a full queue answers 429 with retry-after', async () => {
    const controller = new AbortController();
    const refusals: Array<{ status: number; retryAfter: string | null; body: any }> = [];
    const requests = Array.from({ length: 4 }, () =>
      fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(SLOW_CHAT),
        signal: controller.signal,
      })
        .then(async (response) => {
          refusals.push({ status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() });
        })
        .catch((error: Error) => {
          if (error.name !== 'AbortError') throw error;
        }),
    );
    try {
      // One request runs, one waits, two are refused at once.
      await waitFor(() => refusals.length >= 2, 15_000, 'two refusals');
      assert.equal(server.server.engine.load()[0].busy, 1);
      assert.equal(server.server.engine.load()[0].queued, 1);
    } finally {
      controller.abort();
      await Promise.all(requests);
    }
    assert.equal(refusals.length, 2);
    for (const refusal of refusals) {
      assert.equal(refusal.status, 429);
      assert.ok(Number(refusal.retryAfter) >= 1, `retry-after: ${refusal.retryAfter}`);
      assert.equal(refusal.body.error.type, 'rate_limit_error');
      assert.equal(refusal.body.error.code, 'queue_full');
    }
    await waitFor(idle, 15_000, 'the aborted requests to leave');
    const next = await client.chat.completions.create(
      { model: TINY_RANDOM, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 },
      { timeout: 15_000 },
    );
    assert.equal(next.choices.length, 1);
  });
});

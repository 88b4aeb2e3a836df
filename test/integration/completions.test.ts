import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

const PROMPT = 'Once upon a time';
/** Llama-2 vocabularies: beginning of sequence, which a text prompt starts with. */
const BOS = 1;

let server: TestServer;
let client: OpenAI;

function greedy(prompt: OpenAI.CompletionCreateParams['prompt'], extra: Record<string, unknown> = {}) {
  return client.completions.create({
    model: STORIES,
    prompt,
    temperature: 0,
    max_tokens: 8,
    ...extra,
  } as OpenAI.CompletionCreateParamsNonStreaming);
}

before(async () => {
  server = await startTestServer();
  client = server.client;
});

after(async () => {
  await server?.close();
});

describe('POST /v1/completions', () => {
  test('string prompt', async () => {
    const { data, response } = await greedy(PROMPT).withResponse();
    assert.equal(data.id, `cmpl-${response.headers.get('x-request-id')}`);
    assert.equal(data.object, 'text_completion');
    assert.equal(data.model, STORIES);
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].index, 0);
    assert.ok(data.choices[0].text.length > 0);
    assert.equal(data.choices[0].finish_reason, 'length');
    assert.equal(data.choices[0].logprobs, null);
    // The prompt's tokens plus the beginning-of-sequence token.
    const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { content: PROMPT });
    assert.equal(data.usage!.prompt_tokens, tokenized.body.tokens.length + 1);
    assert.equal(data.usage!.completion_tokens, 8);
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + 8);
  });

  test('array of prompts: choice index = prompt index * n + choice', async () => {
    const prompts = [PROMPT, 'Tom had a dog'];
    const alone = await Promise.all(prompts.map((prompt) => greedy(prompt, { max_tokens: 6 })));
    const response = await greedy(prompts, { n: 2, max_tokens: 6 });
    assert.deepEqual(
      response.choices.map((choice) => choice.index),
      [0, 1, 2, 3],
    );
    // Greedy: both choices of a prompt equal that prompt's output alone.
    for (const choice of response.choices) {
      assert.equal(choice.text, alone[Math.floor(choice.index / 2)].choices[0].text);
    }
    assert.notEqual(alone[0].choices[0].text, alone[1].choices[0].text);
    assert.equal(response.usage!.prompt_tokens, alone[0].usage!.prompt_tokens + alone[1].usage!.prompt_tokens);
    assert.equal(response.usage!.completion_tokens, 24);
  });

  test('token-array prompt equals the same text prompt', async () => {
    const tokenized = await rawRequest(server.url, 'POST', '/tokenize', { content: PROMPT, add_special: true });
    const tokens = tokenized.body.tokens as number[];
    assert.equal(tokens[0], BOS);
    const fromText = await greedy(PROMPT);
    const fromTokens = await greedy(tokens);
    assert.equal(fromTokens.choices[0].text, fromText.choices[0].text);
    assert.equal(fromTokens.usage!.prompt_tokens, tokens.length);

    const fromTokenArrays = await greedy([tokens, tokens]);
    assert.equal(fromTokenArrays.choices.length, 2);
    for (const choice of fromTokenArrays.choices) assert.equal(choice.text, fromText.choices[0].text);
  });

  test('echo: the prompt comes first', async () => {
    const plain = await greedy(PROMPT);
    const echoed = await greedy(PROMPT, { echo: true });
    assert.ok(echoed.choices[0].text.endsWith(plain.choices[0].text));
    assert.ok(echoed.choices[0].text.trimStart().startsWith(PROMPT));
    assert.equal(echoed.usage!.completion_tokens, 8);
  });

  test(
    'echo: the prompt comes back verbatim',
    async () => {
      const plain = await greedy(PROMPT);
      const echoed = await greedy(PROMPT, { echo: true });
      assert.equal(echoed.choices[0].text, PROMPT + plain.choices[0].text);
    },
  );

  test('suffix is rejected with 400', async () => {
    await assert.rejects(greedy(PROMPT, { suffix: 'The end.' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.status, 400);
      assert.equal(error.param, 'suffix');
      assert.equal(error.code, 'unsupported_parameter');
      return true;
    });
  });

  test('logprobs: the legacy shape', async () => {
    const response = await greedy(PROMPT, { logprobs: 2, max_tokens: 6 });
    const { text, logprobs } = response.choices[0];
    assert.ok(logprobs);
    const { tokens, token_logprobs, top_logprobs, text_offset } = logprobs as Required<OpenAI.Completions.CompletionChoice.Logprobs>;
    for (const list of [tokens, token_logprobs, top_logprobs, text_offset]) assert.equal(list.length, 6);
    assert.equal(text_offset[0], 0);
    for (let index = 0; index < 6; index++) {
      assert.equal(typeof tokens[index], 'string');
      assert.ok(token_logprobs[index] <= 0);
      const alternatives = top_logprobs[index];
      // A dict of token text -> logprob: at most 2 (two tokens with the same text share a key).
      const entries = Object.entries(alternatives);
      assert.ok(entries.length >= 1 && entries.length <= 2);
      for (const [, logprob] of entries) assert.ok(logprob <= 0);
      // Greedy picks the most likely token.
      assert.equal(Math.max(...entries.map(([, logprob]) => logprob)), token_logprobs[index]);
      if (index > 0) assert.ok(text_offset[index] >= text_offset[index - 1]);
    }
    assert.ok(text_offset[5] < text.length);
  });

  test(
    'logprobs: tokens concatenate to the text and text_offset points into it',
    async () => {
      const response = await greedy(PROMPT, { logprobs: 1, max_tokens: 6 });
      const { text, logprobs } = response.choices[0];
      assert.equal(logprobs!.tokens!.join(''), text);
      logprobs!.tokens!.forEach((token, index) => assert.equal(text.slice(logprobs!.text_offset![index]).startsWith(token), true));
    },
  );

  test('logprobs with echo: text_offset counts the echoed prompt', async () => {
    const response = await greedy(PROMPT, { logprobs: 1, max_tokens: 3, echo: true });
    const { text, logprobs } = response.choices[0];
    const plain = await greedy(PROMPT, { max_tokens: 3 });
    assert.ok(text.endsWith(plain.choices[0].text));
    assert.equal(logprobs!.text_offset![0], text.length - plain.choices[0].text.length);

    // Streamed, the offsets count the echoed prompt too.
    const stream = await client.completions.create({
      model: STORIES,
      prompt: PROMPT,
      temperature: 0,
      max_tokens: 3,
      logprobs: 1,
      echo: true,
      stream: true,
    });
    const offsets: number[] = [];
    for await (const chunk of stream) offsets.push(...(chunk.choices[0]?.logprobs?.text_offset ?? []));
    assert.deepEqual(offsets, logprobs!.text_offset);
  });

  test('streaming: text chunks, finish chunk, usage chunk', async () => {
    const whole = await greedy(PROMPT, { max_tokens: 10 });
    const stream = await client.completions.create({
      model: STORIES,
      prompt: PROMPT,
      temperature: 0,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 3);
    for (const chunk of chunks) assert.equal(chunk.object, 'text_completion');
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage!.completion_tokens, 10);
    assert.equal(usageChunk.usage!.prompt_tokens, whole.usage!.prompt_tokens);
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'length');
    const text = chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('');
    assert.equal(text, whole.choices[0].text);
  });

  test('streaming several prompts: every choice index finishes', async () => {
    const stream = await client.completions.create({
      model: STORIES,
      prompt: [PROMPT, 'Tom had a dog'],
      temperature: 0,
      max_tokens: 4,
      stream: true,
    });
    const texts = ['', ''];
    const finished: Array<string | null> = [null, null];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.text;
        if (choice.finish_reason) finished[choice.index] = choice.finish_reason;
      }
    }
    assert.deepEqual(finished, ['length', 'length']);
    assert.equal(texts[0], (await greedy(PROMPT, { max_tokens: 4 })).choices[0].text);
  });

  test('max_tokens defaults to 16', async () => {
    const response = await client.completions.create({ model: STORIES, prompt: PROMPT, temperature: 0 });
    assert.equal(response.usage!.completion_tokens, 16);
    assert.equal(response.choices[0].finish_reason, 'length');
  });

  test('stop strings cut the text', async () => {
    const full = (await greedy(PROMPT, { max_tokens: 30 })).choices[0].text;
    const stop = full.slice(10, 15);
    const stopped = await greedy(PROMPT, { max_tokens: 30, stop: [stop] });
    assert.equal(stopped.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(stopped.choices[0].finish_reason, 'stop');
    // The token computed ahead of a stop (pipelined generation) is neither emitted nor billed, and the prompt cache
    // that reuses its sequence still gives the same greedy answers.
    assert.ok(stopped.usage!.completion_tokens < 30, `completion_tokens ${stopped.usage!.completion_tokens}`);
    const again = await greedy(PROMPT, { max_tokens: 30, stop: [stop] });
    assert.equal(again.choices[0].text, stopped.choices[0].text);
    assert.equal(again.usage!.completion_tokens, stopped.usage!.completion_tokens);
    assert.equal((await greedy(PROMPT, { max_tokens: 30 })).choices[0].text, full);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { DecodeLoop, type Generation } from '../../src/engine/llama/decode-loop.js';

/** The engine's decode loop on the real bundled model, without HTTP: batching, chunked prompts, stops, failures. */

const MODEL = `${process.cwd()}/models/stories260K.gguf`;
const GREEDY = { temperature: 0, seed: 1 };

let llama: Llama;
let model: LlamaModel;

function promptTokens(text: string): Token[] {
  return [model.tokens.bos!, ...model.tokenize(text, false)];
}

const PROMPTS = [
  'Once upon a time there was a little girl named Lily who liked to play in the park with her dog',
  'The sun was shining and the birds were singing in the big green tree',
  'Tom had a red ball and he wanted to share it with his friend Sam at school',
  'One day a small cat found a box in the garden behind the old house',
];

async function collect(generation: Generation): Promise<Token[]> {
  const tokens: Token[] = [];
  for await (const { token } of generation) tokens.push(token);
  return tokens;
}

/** A greedy generation of exactly `count` tokens on the context's sequence `sequenceIndex`. */
function generateOn(loop: DecodeLoop, context: LlamaContext, sequenceIndex: number, prompt: Token[], count: number, probabilities = false) {
  const sequence = sequences.get(context)![sequenceIndex];
  let produced = 0;
  return loop.generate({
    sequence,
    tokens: prompt,
    sampling: { options: { ...GREEDY }, dynamic: false, probabilities, continueAfter: () => ++produced < count },
  });
}

const sequences = new Map<LlamaContext, ReturnType<LlamaContext['getSequence']>[]>();

async function createContext(options: { sequences: number; batchSize: number; contextSize?: number }): Promise<{ context: LlamaContext; loop: DecodeLoop }> {
  const context = await model.createContext({
    sequences: options.sequences,
    contextSize: options.contextSize ?? 512,
    batchSize: options.batchSize,
    threads: 1,
    flashAttention: false,
  });
  sequences.set(context, Array.from({ length: options.sequences }, () => context.getSequence({ contextShift: { size: 0 } })));
  return { context, loop: DecodeLoop.attach(context, model) };
}

describe('decode loop (stories-260k, no HTTP)', () => {
  before(async () => {
    llama = await getLlama({ build: 'never', gpu: false, logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: MODEL });
  });
  after(async () => {
    await model.dispose();
  });

  test('generations batched together give what each gives alone, and prompts longer than the batch are chunked', async () => {
    const alone = await createContext({ sequences: 1, batchSize: 512 });
    const expected: Token[][] = [];
    for (const text of PROMPTS) {
      await sequences.get(alone.context)![0].clearHistory();
      expected.push(await collect(generateOn(alone.loop, alone.context, 0, promptTokens(text), 24)));
    }
    await alone.loop.close();
    await alone.context.dispose();
    assert.ok(expected.every((tokens) => tokens.length === 24));

    // A batch of 16 tokens: every prompt (about 20-25 tokens) needs two steps, shared with the others' generation.
    const together = await createContext({ sequences: 4, batchSize: 16 });
    const started = PROMPTS.map((text, index) => collect(generateOn(together.loop, together.context, index, promptTokens(text), 24)));
    const actual = await Promise.all(started);
    assert.deepEqual(actual, expected);
    // Each sequence holds its prompt and every generated token but the last (sampled, never evaluated).
    for (const [index, text] of PROMPTS.entries()) {
      const sequence = sequences.get(together.context)![index];
      assert.deepEqual(sequence.contextTokens, [...promptTokens(text), ...expected[index].slice(0, -1)]);
      assert.equal(sequence.nextTokenIndex, sequence.contextTokens.length);
    }
    await together.loop.close();
    await together.context.dispose();
  });

  test('samples read the right rows when llama.cpp reorders a batch\'s outputs (the reordering is not thread-safe)', async () => {
    // Each round, sequences 0-3 evaluate 2 tokens while 4-7 generate one: llama.cpp's per-sequence KV streams
    // evaluate such a batch in two micro-batches (1 token of each sequence, then the rest), so the outputs of 0-3
    // come last, and llama.cpp swaps the rows back into batch order when they are first read. Samples taken in
    // parallel, each applying the swaps, would read mixed rows.
    const AND = promptTokens('and')[1];
    const run = async (together: boolean): Promise<Token[][]> => {
      const { context, loop } = await createContext({ sequences: 8, batchSize: 64 });
      const drive = async (index: number): Promise<Token[]> => {
        const prompt = promptTokens(PROMPTS[index % PROMPTS.length]);
        if (index >= 4) return collect(generateOn(loop, context, index, prompt, 300));
        const tokens = await collect(generateOn(loop, context, index, prompt, 1));
        for (let round = 0; round < 150; round++) tokens.push(...(await collect(generateOn(loop, context, index, [tokens.at(-1)!, AND], 1))));
        return tokens;
      };
      const results: Token[][] = [];
      if (together) results.push(...(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(drive))));
      else for (let index = 0; index < 8; index++) results.push(await drive(index));
      await loop.close();
      await context.dispose();
      return results;
    };
    const alone = await run(false);
    assert.deepEqual(await run(true), alone);
  });

  test('stop() ends a generation after the step under way; the sequence is consistent and serves again', async () => {
    const { context, loop } = await createContext({ sequences: 2, batchSize: 64 });
    const sequence = sequences.get(context)![0];
    const prompt = promptTokens(PROMPTS[0]);
    const generation = generateOn(loop, context, 0, prompt, 1000);
    const seen: Token[] = [];
    for await (const { token } of generation) {
      seen.push(token);
      if (seen.length === 5) generation.stop();
    }
    await generation.finished;
    // At most one token beyond the stop was under way; the token list and the KV cache agree.
    assert.ok(seen.length >= 5 && seen.length <= 6, `saw ${seen.length} tokens`);
    assert.equal(sequence.nextTokenIndex, sequence.contextTokens.length);
    const native = (context as unknown as { _ctx: { getSequenceKvCacheMaxPosition(id: number): number } })._ctx;
    assert.equal(native.getSequenceKvCacheMaxPosition((sequence as unknown as { _sequenceId: number })._sequenceId), sequence.nextTokenIndex - 1);

    // Continuing from the held state gives what a fresh greedy run of the same text gives.
    const held = sequence.contextTokens;
    const next = await collect(generateOn(loop, context, 0, [seen[seen.length - 1]], 4));
    const fresh = await collect(generateOn(loop, context, 1, [...held, seen[seen.length - 1]], 4));
    assert.deepEqual(next, fresh);
    await loop.close();
    await context.dispose();
  });

  test('evaluate-only generations, probabilities, and a sequence that runs out of context fail alone', async () => {
    const { context, loop } = await createContext({ sequences: 2, batchSize: 64, contextSize: 64 });
    const [first, second] = sequences.get(context)!;
    const prompt = promptTokens(PROMPTS[1]);

    // No sampling: the prompt is evaluated and kept, nothing is yielded.
    assert.deepEqual(await collect(loop.generate({ sequence: first, tokens: prompt, sampling: null })), []);
    assert.deepEqual(first.contextTokens, prompt);

    // Probabilities: the sampled (greedy) token is the most likely candidate.
    const withProbabilities: Array<Map<Token, number> | null> = [];
    for await (const item of generateOn(loop, context, 1, prompt, 3, true)) withProbabilities.push(item.probabilities);
    assert.equal(withProbabilities.length, 3);
    for (const map of withProbabilities) {
      assert.ok(map !== null && map.size > 0);
      const values = [...map.values()];
      assert.ok(values.every((value) => value >= 0 && value <= 1));
    }

    // A generation that never stops on its own runs into the context's end: an error for it alone.
    await second.clearHistory();
    const endless = loop.generate({
      sequence: second,
      tokens: prompt,
      sampling: { options: { ...GREEDY }, dynamic: false, probabilities: false, continueAfter: () => true },
    });
    let produced = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of endless) produced++;
      })(),
      /context size/,
    );
    // (llama.cpp rounds the context up: 64 asked, context.contextSize tells.)
    assert.equal(produced, context.contextSize - prompt.length + 1, `produced ${produced}`);
    // The loop goes on serving the other sequence.
    await first.clearHistory();
    assert.equal((await collect(generateOn(loop, context, 0, prompt, 5))).length, 5);

    // After close, new generations are refused with an error, not left hanging.
    await loop.close();
    await assert.rejects(collect(generateOn(loop, context, 0, [prompt[0]], 1)), /shutting down/);
    await context.dispose();
  });
});

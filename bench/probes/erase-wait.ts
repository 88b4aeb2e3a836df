/**
 * Probe: how long `eraseContextTokenRanges` waits while other sequences of the same context generate.
 *
 *   node dist/bench/probes/erase-wait.js [--model models/stories260K.gguf] [--generating 1,2,4,7] [--tokens 300]
 *
 * node-llama-cpp 3.21.1's batch dispatch loop holds the context lock for as long as any decode is queued, and
 * erasing takes the same lock, so with two or more sequences generating the erase waits until all of them stop.
 * Tokenmill erases a reused slot's stale tail before every request (model-runner.ts, reusePrefix), so this wait lands in
 * TTFT under concurrency. Prints one line per count of generating sequences: the erase's wait and the others' run, ms.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { parsePositiveInteger, parsePositiveIntegerList } from '../options.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/stories260K.gguf' },
      generating: { type: 'string', default: '1,2,4,7' },
      tokens: { type: 'string', default: '300' },
    },
    strict: true,
  });
  const counts = parsePositiveIntegerList(values.generating, '--generating');
  const tokens = parsePositiveInteger(values.tokens, '--tokens');
  const llama = await getLlama({ build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: values.model });
  for (const generating of counts) {
    const { waitedMs, othersMs } = await measure(model, generating, tokens);
    console.log(`${generating} sequences generating: erase waited ${waitedMs.toFixed(1)} ms; they ran ${othersMs.toFixed(0)} ms`);
  }
  await model.dispose();
}

/** One context with `generating` + 1 sequences: the last holds stale state and is erased 50 ms into the others' run. */
async function measure(model: LlamaModel, generating: number, tokens: number): Promise<{ waitedMs: number; othersMs: number }> {
  const context = await model.createContext({ sequences: generating + 1, contextSize: 2048, threads: 1 });
  const sequences = Array.from({ length: generating + 1 }, () => context.getSequence());
  const stale = sequences[generating];
  const prompt = model.tokenize('Once upon a time there was a little girl', true);
  await generate(stale, prompt, 10);
  const started = performance.now();
  const others = Promise.all(sequences.slice(0, generating).map((sequence) => generate(sequence, prompt, tokens)));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const eraseStarted = performance.now();
  await stale.eraseContextTokenRanges([{ start: 0, end: stale.nextTokenIndex }]);
  const waitedMs = performance.now() - eraseStarted;
  await others;
  const othersMs = performance.now() - started;
  await context.dispose();
  return { waitedMs, othersMs };
}

async function generate(sequence: LlamaContextSequence, prompt: Token[], tokens: number): Promise<void> {
  let count = 0;
  for await (const token of sequence.evaluate(prompt, { temperature: 0.7, yieldEogToken: true })) {
    void token;
    if (++count >= tokens) break;
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

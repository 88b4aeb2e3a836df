/**
 * Probe: what a prefix costs to compute, and to copy from another sequence through a state file (decision 0011; the
 * same save and load a disk cache of hot prefixes would do).
 *
 *   node dist/bench/probes/prefix-copy.js [--model stories|bench58m] [--tokens 1500]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { NativeContextHooks } from '../../src/engine/llama/native-context.js';
import { BENCH_MODELS, ensureBench58m } from '../bench-models.js';
import type { ModelName } from '../options.js';
import { parsePositiveInteger } from '../options.js';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'stories' }, tokens: { type: 'string', default: '1500' } }, strict: true });
const name = values.model as ModelName;
if (name === 'bench58m') await ensureBench58m((line) => process.stderr.write(`${line}\n`));
const tokenCount = parsePositiveInteger(values.tokens, '--tokens');
const llama = await getLlama({ build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: BENCH_MODELS[name].path });
const context = await model.createContext({ sequences: 2, contextSize: 2048, threads: 1 });
const hooks = NativeContextHooks.attach(context, { threads: 1, batchThreads: 1, batchMinTokens: 2, promptMinTokens: 2 });
const [source, target] = [context.getSequence(), context.getSequence()];
const words = 'once upon a time there was a little cat who liked to play in the sun with her friends '.split(' ');
let text = '';
while (model.tokenize(text).length < tokenCount) text += `${words[text.length % words.length]} `;
const tokens = model.tokenize(text, false).slice(0, tokenCount) as Token[];
let started = performance.now();
await source.evaluateWithoutGeneratingNewTokens(tokens);
const computeMs = performance.now() - started;
const copies: number[] = [];
for (let round = 0; round < 5; round++) {
  await hooks.truncate(target, 0);
  started = performance.now();
  const copied = await hooks.copyPrefix(source, target, tokens, tokens.length);
  copies.push(performance.now() - started);
  if (copied !== tokens.length) throw new Error(`copied ${copied} of ${tokens.length}`);
}
copies.sort((a, b) => a - b);
console.log(`${BENCH_MODELS[name].name}: ${tokens.length} tokens computed in ${computeMs.toFixed(1)} ms; copied (save + load) in ${copies[2].toFixed(1)} ms (median of 5): ${(computeMs / copies[2]).toFixed(0)}x cheaper`);
await context.dispose();
await model.dispose();

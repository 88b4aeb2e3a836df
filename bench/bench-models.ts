import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { makeBenchModel } from './gguf/make-bench-model.js';
import type { ModelName } from './options.js';
import { benchCacheDirectory, repositoryRoot } from './paths.js';

export interface BenchModel {
  name: ModelName;
  /** The id the server serves it as. */
  id: string;
  /** Absolute path of the GGUF file. */
  path: string;
  /** One line on why this model is in the bench. */
  role: string;
  /** llama.cpp flash attention, as the bundled catalog sets it (server and ceiling alike). */
  flashAttention: boolean | 'auto';
}

/** How the bench serves `model` (startTokenmill's model options): its id, file and flash attention. */
export function servedModel(model: BenchModel): { modelId: string; modelPath: string; flashAttention: boolean | 'auto' } {
  return { modelId: model.id, modelPath: model.path, flashAttention: model.flashAttention };
}

const BENCH58M_PATH = path.join(benchCacheDirectory, 'bench58m.gguf');
const TOKENIZER_SOURCE = path.join(repositoryRoot, 'models', 'llama-2-tiny-random.gguf');

export const BENCH_MODELS: Record<ModelName, BenchModel> = {
  stories: {
    name: 'stories',
    id: 'stories-260k',
    path: path.join(repositoryRoot, 'models', 'stories260K.gguf'),
    role: 'tiny (260K params): per-token overhead dominates',
    flashAttention: false,
  },
  bench58m: {
    name: 'bench58m',
    id: 'bench58m',
    path: BENCH58M_PATH,
    role: 'random Q8_0 weights, 58M params: compute dominates',
    flashAttention: 'auto',
  },
};

/** Generates bench/.cache/bench58m.gguf once (about 62 MB; written to a temporary name, then renamed). */
export async function ensureBench58m(log: (line: string) => void): Promise<void> {
  if (existsSync(BENCH58M_PATH)) return;
  await mkdir(benchCacheDirectory, { recursive: true });
  const partial = `${BENCH58M_PATH}.partial-${process.pid}`;
  log(`generating ${path.relative(repositoryRoot, BENCH58M_PATH)} (once)...`);
  try {
    await makeBenchModel({ outPath: partial, tokenizerFrom: TOKENIZER_SOURCE });
    await rename(partial, BENCH58M_PATH);
  } finally {
    await rm(partial, { force: true });
  }
}

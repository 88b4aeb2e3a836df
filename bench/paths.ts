import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs as dist/bench/paths.js. */
export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Generated, git-ignored bench inputs (the bench58m model). */
export const benchCacheDirectory = path.join(repositoryRoot, 'bench', '.cache');

/** The compiled bench scripts, next to this file. */
export const compiledBenchDirectory = path.dirname(fileURLToPath(import.meta.url));

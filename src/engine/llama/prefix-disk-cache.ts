import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { NativeContextHooks } from './native-context.js';

/** A prefix state on disk: `<id>.bin` (llama.cpp's sequence state) and `<id>.json` (this). */
interface Entry {
  id: string;
  /** sha256 of the cache scope (account and salt are not written in the clear). */
  scopeHash: string;
  /** The prompt tokens the state holds. */
  tokens: Token[];
  /** ms since epoch; least recent is evicted first. */
  lastUsed: number;
}

export interface PrefixDiskCacheOptions {
  /** Most entries kept; the least recently used go first. */
  maxEntries: number;
  /** Shorter prefixes are not worth a file. */
  minTokens: number;
}

/**
 * Hot prompt prefixes saved to disk, so that they survive eviction from the model's sequences and restarts (issue 5;
 * decision 0011 measured a state load at 2-7 ms against 1.3-2.2 s to recompute 1,500 tokens). A prefix is saved the
 * first time it is reused (hot), and loaded when no sequence holds as much of a prompt. The directory must belong to
 * one model file: a state loaded into another model can crash llama.cpp (the caller names it by the file's identity).
 */
export class PrefixDiskCache {
  private readonly entries = new Map<string, Entry>();
  /** Ids being written: not offered for loading yet. */
  private readonly writing = new Set<string>();

  private constructor(
    private readonly directory: string,
    private readonly options: PrefixDiskCacheOptions,
  ) {}

  /** Opens (creating) the directory and reads the entries a previous run left; broken ones are removed. */
  static async open(directory: string, options: PrefixDiskCacheOptions): Promise<PrefixDiskCache> {
    await mkdir(directory, { recursive: true });
    const cache = new PrefixDiskCache(directory, options);
    for (const name of await readdir(directory)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      try {
        const parsed = JSON.parse(await readFile(join(directory, name), 'utf8')) as { scopeHash?: unknown; tokens?: unknown };
        const tokens = parsed.tokens;
        if (typeof parsed.scopeHash !== 'string' || !Array.isArray(tokens) || !tokens.every((token) => Number.isInteger(token))) {
          throw new Error('malformed entry');
        }
        const { mtimeMs } = await stat(cache.statePath(id));
        cache.entries.set(id, { id, scopeHash: parsed.scopeHash, tokens: tokens as Token[], lastUsed: mtimeMs });
      } catch {
        await cache.remove(id);
      }
    }
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `scope` sharing the longest prefix with `prompt`, if it shares more than `atLeast` tokens. */
  best(scope: string, prompt: readonly Token[], atLeast: number): { entry: Entry; length: number } | null {
    const scopeHash = hashScope(scope);
    let best: { entry: Entry; length: number } | null = null;
    for (const entry of this.entries.values()) {
      if (entry.scopeHash !== scopeHash || this.writing.has(entry.id)) continue;
      const length = sharedPrefix(entry.tokens, prompt);
      if (length > atLeast && length >= this.options.minTokens && (best === null || length > best.length)) best = { entry, length };
    }
    return best;
  }

  /** Loads an entry into the idle `target` (keeping what it shares with `prompt`); returns the tokens it then holds. */
  async load(hooks: NativeContextHooks, target: LlamaContextSequence, entry: Entry, prompt: readonly Token[]): Promise<number> {
    entry.lastUsed = Date.now();
    return hooks.loadState(target, this.statePath(entry.id), entry.tokens, prompt);
  }

  /**
   * Saves the first `length` tokens of `prompt` as `sequence` holds them, unless an entry of the scope already holds
   * that much of it. Never throws (a failed save only loses the entry).
   */
  async save(hooks: NativeContextHooks, sequence: LlamaContextSequence, scope: string, prompt: readonly Token[], length: number): Promise<void> {
    if (length < this.options.minTokens || this.options.maxEntries === 0) return;
    const prefix = prompt.slice(0, length);
    const scopeHash = hashScope(scope);
    for (const entry of this.entries.values()) {
      if (entry.scopeHash === scopeHash && sharedPrefix(entry.tokens, prefix) >= length) return;
    }
    const id = createHash('sha256').update(scopeHash).update(Uint32Array.from(prefix)).digest('hex').slice(0, 32);
    if (this.writing.has(id)) return;
    this.writing.add(id);
    try {
      const tokens = await hooks.saveState(sequence, this.statePath(id), prefix);
      if (tokens.length < this.options.minTokens) {
        await this.remove(id);
        return;
      }
      await writeFile(join(this.directory, `${id}.json`), JSON.stringify({ scopeHash, tokens }));
      this.entries.set(id, { id, scopeHash, tokens, lastUsed: Date.now() });
      await this.evict();
    } catch {
      await this.remove(id);
    } finally {
      this.writing.delete(id);
    }
  }

  private async evict(): Promise<void> {
    while (this.entries.size > this.options.maxEntries) {
      let oldest: Entry | null = null;
      for (const entry of this.entries.values()) if (oldest === null || entry.lastUsed < oldest.lastUsed) oldest = entry;
      if (oldest === null) return;
      await this.remove(oldest.id);
    }
  }

  private async remove(id: string): Promise<void> {
    this.entries.delete(id);
    await unlink(join(this.directory, `${id}.json`)).catch(() => {});
    await unlink(this.statePath(id)).catch(() => {});
  }

  private statePath(id: string): string {
    return join(this.directory, `${id}.bin`);
  }
}

function hashScope(scope: string): string {
  return createHash('sha256').update(scope).digest('hex');
}

function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let index = 0;
  while (index < limit && a[index] === b[index]) index++;
  return index;
}

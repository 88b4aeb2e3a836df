import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import type { LocalModelConfig } from '../../config/schema.js';
import type { NativeContextHooks } from './native-context.js';
import { PrefixDiskCache } from './prefix-disk-cache.js';

/** One sequence of the model's context; its KV state is kept after a request for prefix reuse. */
export interface Slot {
  sequence: LlamaContextSequence;
  /** ms since epoch of the last release; least recent is evicted first. */
  lastUsed: number;
  /** The cache scope of the request that computed the sequence's state; null: never used. */
  scope: string | null;
  /** A prefix of the state pinned by a request's `cachePin`, and until when (ms since epoch). */
  pin: { prefix: readonly Token[]; until: number } | null;
}

/** Fewer shared tokens than this are recomputed rather than copied from another sequence (a copy costs ~1-7 ms). */
const MIN_PREFIX_COPY = 32;

/**
 * The prompt cache of one model: which sequence a request takes (longest shared prefix in its scope, pins
 * respected), copying a longer prefix from another sequence (decision 0011), the optional disk tier, and cutting a
 * sequence's state back to what a prompt shares with it. Scopes are opaque strings: a state is reused only by
 * requests of the scope that computed it.
 */
export class PrefixCache {
  private constructor(
    private readonly slots: readonly Slot[],
    private readonly hooks: NativeContextHooks,
    private readonly disk: PrefixDiskCache | null,
  ) {}

  /** `promptCacheDirectory`: where `prompt_cache.disk_entries` keeps prefixes (a folder per model file), if anywhere. */
  static async create(slots: readonly Slot[], hooks: NativeContextHooks, config: LocalModelConfig, promptCacheDirectory: string | null): Promise<PrefixCache> {
    const disk =
      promptCacheDirectory === null || config.prompt_cache.disk_entries === 0
        ? null
        : await PrefixDiskCache.open(join(promptCacheDirectory, await modelFileIdentity(config)), {
            maxEntries: config.prompt_cache.disk_entries,
            minTokens: config.prompt_cache.disk_min_tokens,
          });
    return new PrefixCache(slots, hooks, disk);
  }

  /**
   * The free slot sharing the longest prefix with the prompt, among slots of the request's cache scope; else the LRU.
   * A slot whose pinned prefix (unexpired) this prompt would overwrite is taken only when every free slot would be.
   * While other sequences run, a free slot next to a busy one (by sequence id) is preferred unless another shares at
   * least MIN_PREFIX_COPY more tokens: llama.cpp decodes each run of consecutive sequence ids of a batch as a
   * separate micro-batch (its per-sequence KV streams), so scattered sequences cost a compute graph each per step.
   */
  choose(free: readonly Slot[], tokens: readonly Token[], scope: string, now: number): Slot {
    let best: Candidate | null = null;
    let bestAdjacent: Candidate | null = null;
    const isFree = new Set(free);
    const busy = (index: number) => index >= 0 && index < this.slots.length && !isFree.has(this.slots[index]);
    for (const slot of free) {
      const length = slot.scope === scope ? commonPrefixLength(slot.sequence.contextTokens, tokens) : 0;
      const breaksPin =
        slot.pin !== null && slot.pin.until > now && (slot.scope !== scope || commonPrefixLength(slot.pin.prefix, tokens) < slot.pin.prefix.length);
      const candidate = { slot, length, breaksPin };
      if (best === null || better(candidate, best)) best = candidate;
      const index = this.slots.indexOf(slot);
      const nextToBusy = busy(index - 1) || busy(index + 1);
      if (nextToBusy && (bestAdjacent === null || better(candidate, bestAdjacent))) bestAdjacent = candidate;
    }
    if (bestAdjacent !== null && bestAdjacent.breaksPin === best!.breaksPin && best!.length - bestAdjacent.length < MIN_PREFIX_COPY) {
      return bestAdjacent.slot;
    }
    return best!.slot;
  }

  /**
   * Readies the taken `slot` for a prompt of `scope`, and returns how many prompt tokens its state then holds (not to
   * be computed; at least the last prompt token always is, since its logits start generation):
   * - a state of another scope is dropped;
   * - when another slot of the scope (free or busy) holds a longer prefix of the prompt, by at least MIN_PREFIX_COPY
   *   tokens, it is copied over; else, with the disk tier, the longest stored prefix is loaded;
   * - a prefix reused from memory is hot: it is saved to the disk tier (once);
   * - the state is cut back to what it shares with the prompt.
   */
  async prepare(slot: Slot, tokens: readonly Token[], scope: string): Promise<number> {
    if (slot.scope !== scope) {
      await this.hooks.truncate(slot.sequence, 0);
      slot.scope = scope;
    }
    const usable = tokens.slice(0, tokens.length - 1);
    const own = commonPrefixLength(slot.sequence.contextTokens, usable);
    if (this.hooks.canCopy(slot.sequence)) {
      const donor = this.donor(slot, usable, own + MIN_PREFIX_COPY - 1);
      if (donor !== null && this.hooks.canCopy(donor.slot.sequence)) {
        await this.hooks.copyPrefix(donor.slot.sequence, slot.sequence, usable, donor.length);
      } else if (this.disk !== null) {
        const stored = this.disk.best(scope, usable, own + MIN_PREFIX_COPY - 1);
        // A failed load leaves the sequence empty: the prompt is then computed in full.
        if (stored !== null) await this.disk.load(this.hooks, slot.sequence, stored.entry, usable).catch(() => {});
      }
      // Whatever the slot now holds was computed before (in place, in another sequence, or on disk): hot. The save
      // waits for the decode in progress, and does nothing when the disk already holds the prefix.
      const held = commonPrefixLength(slot.sequence.contextTokens, usable);
      if (this.disk !== null && held > 0) void this.disk.save(this.hooks, slot.sequence, scope, usable, held);
    }
    return this.hooks.truncate(slot.sequence, commonPrefixLength(slot.sequence.contextTokens, usable));
  }

  /**
   * After a request: a pin it asked for covers the prompt prefix it computed (a longer or later pin wins); a pin whose
   * prefix the request overwrote, or that expired, is dropped.
   */
  release(slot: Slot, prompt: readonly Token[], pin: { tokens: number; ttlMs: number } | null): void {
    const now = Date.now();
    slot.lastUsed = now;
    const state = slot.sequence.contextTokens;
    if (slot.pin !== null && (slot.pin.until <= now || commonPrefixLength(state, slot.pin.prefix) < slot.pin.prefix.length)) slot.pin = null;
    if (pin === null) return;
    const tokens = Math.min(pin.tokens, commonPrefixLength(state, prompt));
    if (tokens <= 0) return;
    const longer = slot.pin !== null && slot.pin.prefix.length > tokens ? slot.pin.prefix : prompt.slice(0, tokens);
    slot.pin = { prefix: longer, until: Math.max(now + pin.ttlMs, slot.pin?.until ?? 0) };
  }

  /** Another slot of `slot`'s scope sharing more than `atLeast` tokens with the prompt: the one sharing the most. */
  private donor(slot: Slot, tokens: readonly Token[], atLeast: number): { slot: Slot; length: number } | null {
    let best: { slot: Slot; length: number } | null = null;
    for (const other of this.slots) {
      if (other === slot || other.scope !== slot.scope) continue;
      const length = commonPrefixLength(other.sequence.contextTokens, tokens);
      if (length > (best?.length ?? atLeast)) best = { slot: other, length };
    }
    return best;
  }
}

interface Candidate {
  slot: Slot;
  length: number;
  breaksPin: boolean;
}

/** A slot that keeps a pin beats one that breaks it; then the longer shared prefix; then the least recently used. */
function better(candidate: Candidate, than: Candidate): boolean {
  if (candidate.breaksPin !== than.breaksPin) return !candidate.breaksPin;
  return candidate.length > than.length || (candidate.length === than.length && candidate.slot.lastUsed < than.slot.lastUsed);
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let index = 0;
  while (index < limit && a[index] === b[index]) index++;
  return index;
}

/** Names a model file by its path, size and modification time: prefix states on disk are valid for that file only. */
async function modelFileIdentity(config: LocalModelConfig): Promise<string> {
  const file = await stat(config.path);
  const digest = createHash('sha256').update(`${config.path}\u0000${file.size}\u0000${file.mtimeMs}`).digest('hex').slice(0, 16);
  return `${config.id.replace(/[^A-Za-z0-9._-]/g, '_')}-${digest}`;
}

import {
  LlamaGrammarEvaluationState,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, contextLengthExceeded, invalidRequest, TokenmillError } from '../../core/errors.js';
import type { ModelConfig } from '../../config/schema.js';
import type { EngineEvent, FinishReason, GenerateRequest, ModelInfo, Prompt, TokenLogprob } from '../engine.js';
import { createChatWrapper, renderChat } from './chat-prompt.js';
import { GrammarCache } from './grammar/grammar-cache.js';
import { PrefixDiskCache } from './prefix-disk-cache.js';
import { TextOutputReader, type OutputReader } from './output-reader.js';
import { planSampling } from './sampling-options.js';
import { SlotScheduler } from './slot-scheduler.js';
import { NativeContextHooks } from './native-context.js';
import { StopMatcher } from './stop-matcher.js';
import { TokenTextDecoder } from './token-text-decoder.js';
import { selectToolCallFormat } from './tool-calls/select-tool-call-format.js';
import type { ToolCallFormat } from './tool-calls/tool-call-format.js';

/** One sequence of the model's context; its KV state is kept after a request for prefix reuse. */
interface Slot {
  sequence: LlamaContextSequence;
  /** ms since epoch of the last release; least recent is evicted first. */
  lastUsed: number;
  /** The cache scope of the request that computed the sequence's state (see cacheScopeOf); null: never used. */
  scope: string | null;
  /** A prefix of the state pinned by a request's `cachePin`, and until when (ms since epoch). */
  pin: { prefix: readonly Token[]; until: number } | null;
}

interface PreparedPrompt {
  tokens: Token[];
  stopStrings: string[];
  stopTokens: Token[];
  /** Which request field held the prompt, for error messages. */
  param: string;
}

/**
 * One GGUF model served from one llama.cpp context with `sequences` parallel sequences. Concurrent requests run on
 * separate sequences, and node-llama-cpp evaluates the tokens of all sequences that are ready in one decode call
 * (continuous batching). The scheduler bounds the queue and orders waiters by priority.
 */
export class LlamaModelRunner {
  readonly info: ModelInfo;
  private readonly scheduler: SlotScheduler<Slot>;
  private readonly eogTokens: Token[];
  private readonly preparedPrompts = new WeakMap<Prompt, PreparedPrompt>();
  /** Tokens in the model's vocabulary. */
  readonly vocabularySize: number;
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private embeddingQueue: Promise<unknown> = Promise.resolve();
  private readonly toolFormat: ToolCallFormat;
  private readonly grammars: GrammarCache;
  /** Every slot, free or busy: donors of computed prefixes. */
  private readonly slots: readonly Slot[];

  private constructor(
    private readonly config: ModelConfig,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly hooks: NativeContextHooks,
    private readonly chatWrapper: ChatWrapper,
    slots: Slot[],
    private readonly disk: PrefixDiskCache | null,
  ) {
    this.info = {
      id: config.id,
      contextSize: context.contextSize,
      created: Math.floor(Date.now() / 1000),
      ownedBy: 'tokenmill',
    };
    this.scheduler = new SlotScheduler(slots, config.max_queue);
    this.slots = slots;
    this.vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    this.eogTokens = findEogTokens(model, this.vocabularySize);
    this.toolFormat = selectToolCallFormat(chatWrapper);
    this.grammars = new GrammarCache(model.llama, this.toolFormat);
  }

  /** `promptCacheDirectory`: where `prompt_cache.disk_entries` keeps prefixes (a folder per model file), if anywhere. */
  static async load(llama: Llama, config: ModelConfig, promptCacheDirectory: string | null = null): Promise<LlamaModelRunner> {
    const model = await llama.loadModel({ modelPath: config.path });
    const contextSize = config.context_size ?? Math.min(model.trainContextSize, 4096);
    const context = await model.createContext({
      sequences: config.sequences,
      contextSize,
      batchSize: Math.min(config.batch_size, contextSize * config.sequences),
      threads: config.threads,
    });
    const hooks = NativeContextHooks.attach(context, config.threads, config.batch_threads ?? config.threads);
    const slots: Slot[] = [];
    for (let index = 0; index < config.sequences; index++) {
      slots.push({ sequence: context.getSequence({ contextShift: { size: 0 } }), lastUsed: 0, scope: null, pin: null });
    }
    const disk =
      promptCacheDirectory === null || config.prompt_cache.disk_entries === 0
        ? null
        : await PrefixDiskCache.open(join(promptCacheDirectory, await modelFileIdentity(config)), {
            maxEntries: config.prompt_cache.disk_entries,
            minTokens: config.prompt_cache.disk_min_tokens,
          });
    return new LlamaModelRunner(config, model, context, hooks, createChatWrapper(model, config.chat_template), slots, disk);
  }

  get queueDepth(): number {
    return this.scheduler.queueDepth;
  }

  get busySequences(): number {
    return this.config.sequences - this.scheduler.freeSlots;
  }

  tokenize(text: string, addSpecial: boolean): Token[] {
    const tokens = this.model.tokenize(text, false);
    if (addSpecial && this.model.tokens.shouldPrependBosToken && this.model.tokens.bos !== null) {
      return [this.model.tokens.bos, ...tokens];
    }
    return tokens;
  }

  detokenize(tokens: readonly number[], param = 'tokens'): string {
    this.checkTokens(tokens, param);
    return this.model.detokenize(tokens as Token[], false);
  }

  /** Rejects token ids outside the vocabulary: llama.cpp would read out of bounds. */
  private checkTokens(tokens: readonly number[], param: string): void {
    for (const token of tokens) {
      if (!Number.isInteger(token) || token < 0 || token >= this.vocabularySize) {
        throw invalidRequest(`Token ${token} is outside the vocabulary (0..${this.vocabularySize - 1}).`, param);
      }
    }
  }

  countPromptTokens(prompt: Prompt): number {
    return this.prepare(prompt).tokens.length;
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const prompt = this.prepare(request.prompt);
    this.checkTokens([...request.sampling.logitBias.keys()], 'logit_bias');
    const room = this.info.contextSize - prompt.tokens.length;
    if (room < 1) throw contextLengthExceeded(prompt.tokens.length, this.info.contextSize, prompt.param);
    if (request.maxTokens !== null && request.maxTokens > room) {
      throw new TokenmillError(
        'invalid_request',
        'context_length_exceeded',
        `This model's maximum context length is ${this.info.contextSize} tokens. However, you requested ` +
          `${prompt.tokens.length + request.maxTokens} tokens (${prompt.tokens.length} in the prompt, ` +
          `${request.maxTokens} for the completion). Please reduce the prompt or the completion length.`,
        { param: 'max_tokens' },
      );
    }
    const maxTokens = request.maxTokens ?? room;
    const grammar = request.constraint === null ? null : await this.grammars.grammarFor(request.constraint, toolsOf(request.prompt));

    const pinnedTokens = this.pinnedLength(request, prompt.tokens);
    const scope = this.cacheScopeOf(request);
    const slot = await this.scheduler.acquire({
      priority: request.priority,
      deadline: request.deadline,
      signal,
      choose: (free) => longestPrefixSlot(free, prompt.tokens, scope, Date.now()),
    });
    // A state computed in another scope is never reused: it is dropped before this request's prompt goes in.
    const reusable = slot.scope === scope;
    slot.scope = scope;
    try {
      await this.borrowPrefix(slot, prompt.tokens, reusable);
      if (request.echo) yield { type: 'text-delta', text: echoText(request.prompt, this.model), logprobs: null };
      yield* this.run(slot.sequence, prompt, request, maxTokens, grammar, signal, pinnedTokens);
    } finally {
      slot.lastUsed = Date.now();
      updatePin(slot, prompt.tokens, pinnedTokens === null ? null : { tokens: pinnedTokens, ttlMs: request.cachePin!.ttlMs });
      this.scheduler.release(slot);
    }
  }

  private async *run(
    sequence: LlamaContextSequence,
    prompt: PreparedPrompt,
    request: GenerateRequest,
    maxTokens: number,
    grammar: LlamaGrammar | null,
    signal: AbortSignal,
    pinnedTokens: number | null,
  ): AsyncGenerator<EngineEvent> {
    // borrowPrefix already emptied a state of another scope.
    const cachedTokens = await reusePrefix(this.hooks, sequence, prompt.tokens);
    const processed: EngineEvent = {
      type: 'prompt-processed',
      promptTokens: prompt.tokens.length,
      cachedTokens,
      ...(pinnedTokens === null ? {} : { pinnedTokens }),
    };
    if (maxTokens === 0) {
      // Only the prompt: its state is computed and kept for prefix reuse (Anthropic's cache pre-warming).
      await sequence.evaluateWithoutGeneratingNewTokens(prompt.tokens.slice(cachedTokens));
      yield processed;
      yield { type: 'end', finishReason: 'length', usage: { promptTokens: prompt.tokens.length, cachedTokens, completionTokens: 0 } };
      return;
    }
    // A grammar decides where the output may end (llama.cpp then allows only end-of-generation), so banning
    // end-of-generation for min_tokens or ignore_eos, or any ban, could leave no token to sample.
    const limits = grammar === null ? request : { minTokens: 0, ignoreEos: false, softBans: true };
    const plan = planSampling(this.model, this.eogTokens, request.sampling, prompt.tokens, limits);
    if (grammar !== null) plan.options.grammarEvaluationState = new LlamaGrammarEvaluationState({ model: this.model, grammar });
    const reader = this.outputReader(request);
    const decoder = new TokenTextDecoder(this.model, prompt.tokens);
    const stopMatcher = new StopMatcher([...request.stop, ...prompt.stopStrings]);
    const stopTokens = new Set(prompt.stopTokens);
    const input = prompt.tokens.slice(cachedTokens);
    const topLogprobs = request.logprobs;
    const iterator =
      topLogprobs === null
        ? sequence.evaluate(input, plan.options)
        : sequence.evaluateWithMetadata(input, { probabilities: true }, plan.options);

    let completionTokens = 0;
    let previousToken = prompt.tokens[prompt.tokens.length - 1];
    let finishReason: FinishReason = 'stop';
    let stopped = false;
    /** The request's stop string that matched, if one did (the template's own stops are not reported). */
    let stopSequence: string | undefined;
    /** Why generation ended early: the client's abort, the deadline, or an engine failure. */
    let interruption: unknown = null;
    try {
      for await (const item of iterator) {
        if (completionTokens === 0) {
          yield processed;
        }
        const token = typeof item === 'number' ? item : item.token;
        completionTokens++;
        if (signal.aborted) {
          interruption = new AbortedError();
          break;
        }
        plan.observe(token);
        if (stopTokens.has(token)) {
          stopped = true;
          break;
        }
        const match = stopMatcher.push(decoder.push(token));
        const logprobs =
          topLogprobs === null || typeof item === 'number'
            ? null
            : [this.logprobOf(token, previousToken, item.probabilities, topLogprobs)];
        previousToken = token;
        yield* reader.push(match.emit, logprobs);
        if (match.stopped) {
          stopped = true;
          if (match.matched !== undefined && request.stop.includes(match.matched)) stopSequence = match.matched;
          break;
        }
        if (completionTokens >= maxTokens) {
          finishReason = 'length';
          break;
        }
        if (Date.now() > request.deadline) {
          interruption = new TokenmillError('timeout', 'request_timeout', 'The request exceeded its deadline.');
          break;
        }
      }
    } catch (error) {
      // Nothing was generated: the request failed before it started, and there is nothing to account for.
      if (completionTokens === 0) throw error;
      interruption = error;
    }
    const usage = { promptTokens: prompt.tokens.length, cachedTokens, completionTokens };
    if (interruption !== null) {
      yield { type: 'end', finishReason: 'cancelled', usage, error: interruption };
      return;
    }
    if (completionTokens === 0) {
      yield processed;
    }
    if (!stopped) {
      const rest = stopMatcher.push(decoder.flush());
      if (rest.matched !== undefined && request.stop.includes(rest.matched)) stopSequence = rest.matched;
      const tail = rest.stopped ? rest.emit : rest.emit + stopMatcher.flush();
      if (tail.length > 0) yield* reader.push(tail, null);
    }
    const reason = reader.finish(finishReason);
    yield { type: 'end', finishReason: reason, usage, ...(reason === 'stop' && stopSequence !== undefined ? { stopSequence } : {}) };
  }

  /**
   * When another slot of the same scope (free or busy) holds a longer computed prefix of the prompt than `slot`
   * does, by at least MIN_PREFIX_COPY tokens, copies it into `slot` (decision 0011): concurrent requests that share a
   * system prompt then compute it once, not once per sequence. A slot of another scope is emptied first.
   */
  private async borrowPrefix(slot: Slot, tokens: readonly Token[], reusable: boolean): Promise<void> {
    if (!reusable) await this.hooks.truncate(slot.sequence, 0);
    const own = commonPrefixLength(slot.sequence.contextTokens, tokens);
    let donor: Slot | null = null;
    let best = own + MIN_PREFIX_COPY - 1;
    for (const other of this.slots) {
      if (other === slot || other.scope !== slot.scope) continue;
      const length = commonPrefixLength(other.sequence.contextTokens, tokens);
      if (length > best) {
        donor = other;
        best = length;
      }
    }
    if (!this.hooks.canCopy(slot.sequence)) return;
    // At least the last prompt token is evaluated (its logits start generation).
    const usable = tokens.slice(0, tokens.length - 1);
    if (donor !== null && this.hooks.canCopy(donor.sequence)) {
      await this.hooks.copyPrefix(donor.sequence, slot.sequence, usable, best);
    } else if (this.disk !== null) {
      const stored = this.disk.best(slot.scope ?? '', usable, own + MIN_PREFIX_COPY - 1);
      // A failed load leaves the sequence empty: the prompt is then computed in full.
      if (stored !== null) await this.disk.load(this.hooks, slot.sequence, stored.entry, usable).catch(() => {});
    }
    // A prefix reused from memory is hot: keep it on disk too (once; the save waits for the decode in progress).
    const held = commonPrefixLength(slot.sequence.contextTokens, usable);
    if (this.disk !== null && held > own) void this.disk.save(this.hooks, slot.sequence, slot.scope ?? '', usable, held);
    else if (this.disk !== null && own >= this.config.prompt_cache.disk_min_tokens) {
      void this.disk.save(this.hooks, slot.sequence, slot.scope ?? '', usable, own);
    }
  }

  async embed(inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }> {
    if (!this.config.embeddings) {
      throw invalidRequest(`The model '${this.config.id}' does not serve embeddings.`, 'model', 'model_not_supported');
    }
    const tokenLists = inputs.map((input, index) => {
      if (input === '') throw invalidRequest(`input[${index}] is an empty string.`, 'input');
      const tokens = typeof input === 'string' ? this.tokenize(input, true) : (input as Token[]);
      if (typeof input !== 'string') this.checkTokens(input, `input[${index}]`);
      if (tokens.length > this.info.contextSize) {
        throw contextLengthExceeded(tokens.length, this.info.contextSize, `input[${index}]`);
      }
      if (tokens.length === 0) throw invalidRequest(`input[${index}] is empty.`, 'input');
      return tokens;
    });
    const run = this.embeddingQueue.then(async () => {
      const context = await this.embeddingContextReady();
      const vectors: number[][] = [];
      for (const tokens of tokenLists) {
        if (signal.aborted) throw new AbortedError();
        const embedding = await context.getEmbeddingFor(tokens);
        vectors.push(normalize(embedding.vector));
      }
      return vectors;
    });
    this.embeddingQueue = run.catch(() => undefined);
    const vectors = await run;
    return { vectors, promptTokens: tokenLists.reduce((sum, tokens) => sum + tokens.length, 0) };
  }

  async close(): Promise<void> {
    this.scheduler.close();
    if (this.embeddingContext) await (await this.embeddingContext.catch(() => undefined))?.dispose();
    await this.context.dispose();
    await this.model.dispose();
  }

  private embeddingContextReady(): Promise<LlamaEmbeddingContext> {
    this.embeddingContext ??= this.model.createEmbeddingContext({
      contextSize: this.info.contextSize,
      threads: this.config.threads,
    });
    return this.embeddingContext;
  }

  /**
   * Renders and tokenizes a prompt once: admission counts the tokens (countPromptTokens) with the very Prompt object
   * that generate() receives next, so the result is kept per object (a WeakMap: it goes with the request).
   */
  private prepare(prompt: Prompt): PreparedPrompt {
    let prepared = this.preparedPrompts.get(prompt);
    if (prepared === undefined) {
      prepared = this.render(prompt);
      this.preparedPrompts.set(prompt, prepared);
    }
    return prepared;
  }

  private render(prompt: Prompt): PreparedPrompt {
    switch (prompt.kind) {
      case 'chat': {
        const rendered = renderChat(this.model, this.chatWrapper, prompt.messages, prompt.tools ?? [], this.toolFormat, prompt.continueFinal);
        return { ...rendered, param: 'messages' };
      }
      case 'text':
        return { tokens: this.tokenize(prompt.text, true), stopStrings: [], stopTokens: [], param: 'prompt' };
      case 'tokens':
        this.checkTokens(prompt.tokens, 'prompt');
        if (prompt.tokens.length === 0) throw invalidRequest('The prompt is empty.', 'prompt');
        return { tokens: prompt.tokens as Token[], stopStrings: [], stopTokens: [], param: 'prompt' };
    }
  }

  /** How many prompt tokens the request's cache pin covers: what its prefix, rendered alone, shares with the prompt. */
  private pinnedLength(request: GenerateRequest, tokens: readonly Token[]): number | null {
    if (!request.cachePin) return null;
    try {
      return commonPrefixLength(this.prepare(request.cachePin.prefix).tokens, tokens);
    } catch {
      return null; // a prefix that does not render on its own (a template that needs a user turn) pins nothing
    }
  }

  /** Tool calls are read by the model family's format; everything else is text. */
  private outputReader(request: GenerateRequest): OutputReader {
    const constraint = request.constraint;
    if (constraint?.kind !== 'tool-calls') return new TextOutputReader();
    return this.toolFormat.createReader(constraint.choice !== 'auto');
  }

  /** A token's text depends on its predecessor (SentencePiece's leading space), so both are detokenized together. */
  /** The effective prompt-cache scope: the caller's (unless the model shares globally), narrowed by the salt. */
  private cacheScopeOf(request: GenerateRequest): string {
    const tenant = this.config.prompt_cache.scope === 'global' ? '' : (request.cacheScope ?? '');
    return request.cacheSalt === null ? tenant : `${tenant}\u0000${request.cacheSalt}`;
  }

  private logprobOf(token: Token, previous: Token, probabilities: Map<Token, number>, top: number): TokenLogprob {
    const context = [previous];
    const text = this.model.detokenize([token], false, context);
    const alternatives: TokenLogprob['top'] = [];
    if (top > 0) {
      for (const [candidate, probability] of probabilities) {
        const candidateText = this.model.detokenize([candidate], false, context);
        alternatives.push({ token: candidateText, logprob: Math.log(probability), bytes: utf8Bytes(candidateText) });
        if (alternatives.length >= top) break;
      }
    }
    return { token: text, logprob: Math.log(probabilities.get(token) ?? 0), bytes: utf8Bytes(text), top: alternatives };
  }
}

/** Names a model file by its path, size and modification time: prefix states on disk are valid for that file only. */
async function modelFileIdentity(config: ModelConfig): Promise<string> {
  const file = await stat(config.path);
  const digest = createHash('sha256').update(`${config.path}\u0000${file.size}\u0000${file.mtimeMs}`).digest('hex').slice(0, 16);
  return `${config.id.replace(/[^A-Za-z0-9._-]/g, '_')}-${digest}`;
}

/** Fewer shared tokens than this are recomputed rather than copied from another sequence (a copy costs ~1 ms). */
const MIN_PREFIX_COPY = 32;

/**
 * Keeps the longest prefix of the sequence's state that matches the prompt and erases the rest; at least the last
 * prompt token is always evaluated, since its logits start generation. Returns how many tokens were reused.
 */
async function reusePrefix(hooks: NativeContextHooks, sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<number> {
  const common = commonPrefixLength(sequence.contextTokens, tokens);
  const reuse = Math.max(0, Math.min(common, tokens.length - 1));
  await hooks.truncate(sequence, reuse);
  return reuse;
}

/**
 * The free slot sharing the longest prefix with the prompt, among slots of the request's cache scope; else the LRU.
 * A slot whose pinned prefix (unexpired) this prompt would overwrite is taken only when every free slot would be.
 */
function longestPrefixSlot(free: readonly Slot[], tokens: readonly Token[], scope: string, now: number): Slot {
  let best = free[0];
  let bestLength = -1;
  let bestBreaksPin = true;
  for (const slot of free) {
    const length = slot.scope === scope ? commonPrefixLength(slot.sequence.contextTokens, tokens) : 0;
    const breaksPin =
      slot.pin !== null && slot.pin.until > now && (slot.scope !== scope || commonPrefixLength(slot.pin.prefix, tokens) < slot.pin.prefix.length);
    const better =
      breaksPin !== bestBreaksPin
        ? !breaksPin
        : length > bestLength || (length === bestLength && slot.lastUsed < best.lastUsed);
    if (better) {
      best = slot;
      bestLength = length;
      bestBreaksPin = breaksPin;
    }
  }
  return best;
}

/**
 * After a request: a pin it asked for covers the prompt prefix it computed (a longer or later pin wins); a pin whose
 * prefix the request overwrote, or that expired, is dropped.
 */
function updatePin(slot: Slot, prompt: readonly Token[], pin: { tokens: number; ttlMs: number } | null): void {
  const now = Date.now();
  const state = slot.sequence.contextTokens;
  if (slot.pin !== null && (slot.pin.until <= now || commonPrefixLength(state, slot.pin.prefix) < slot.pin.prefix.length)) slot.pin = null;
  if (pin === null) return;
  const tokens = Math.min(pin.tokens, commonPrefixLength(state, prompt));
  if (tokens <= 0) return;
  const longer = slot.pin !== null && slot.pin.prefix.length > tokens ? slot.pin.prefix : prompt.slice(0, tokens);
  slot.pin = { prefix: longer, until: Math.max(now + pin.ttlMs, slot.pin?.until ?? 0) };
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let index = 0;
  while (index < limit && a[index] === b[index]) index++;
  return index;
}

function findEogTokens(model: LlamaModel, size: number): Token[] {
  const tokens: Token[] = [];
  for (let token = 0; token < size; token++) if (model.isEogToken(token as Token)) tokens.push(token as Token);
  return tokens;
}

function toolsOf(prompt: Prompt) {
  return prompt.kind === 'chat' ? (prompt.tools ?? []) : [];
}

/** Completions' `echo`: the prompt as the client sent it (vLLM's behaviour), or its tokens' text. */
function echoText(prompt: Prompt, model: LlamaModel): string {
  switch (prompt.kind) {
    case 'text':
      return prompt.text;
    case 'tokens':
      return model.detokenize(prompt.tokens as Token[], false);
    case 'chat':
      return '';
  }
}

function normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((value) => value / norm) : [...vector];
}

function utf8Bytes(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

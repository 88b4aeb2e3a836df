import { availableParallelism } from 'node:os';
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
import { AbortedError, contextLengthExceeded, invalidRequest, TokenmillError } from '../../core/errors.js';
import type { LocalModelConfig } from '../../config/schema.js';
import type { EngineEvent, FinishReason, GenerateRequest, ModelInfo, Prompt, TokenLogprob } from '../engine.js';
import { createChatWrapper, renderChat } from './chat-prompt.js';
import { GrammarCache } from './grammar/grammar-cache.js';
import { commonPrefixLength, PrefixCache, type Slot } from './prefix-cache.js';
import { TextOutputReader, type OutputReader } from './output-reader.js';
import { planSampling } from './sampling-options.js';
import { SlotScheduler } from './slot-scheduler.js';
import { NativeContextHooks, type ThreadSplit } from './native-context.js';
import { DecodeLoop } from './decode-loop.js';
import { StopMatcher } from './stop-matcher.js';
import { TokenTextDecoder } from './token-text-decoder.js';
import { selectToolCallFormat } from './tool-calls/select-tool-call-format.js';
import type { ToolCallFormat } from './tool-calls/tool-call-format.js';

interface PreparedPrompt {
  tokens: Token[];
  stopStrings: string[];
  stopTokens: Token[];
  /** Which request field held the prompt, for error messages. */
  param: string;
}

/**
 * One GGUF model served from one llama.cpp context with `sequences` parallel sequences. Concurrent requests run on
 * separate sequences, and Tokenmill's decode loop (decode-loop.ts) evaluates the tokens of all running sequences in
 * one decode call per step (continuous batching). The scheduler bounds the queue and orders waiters by priority.
 */
export class LlamaModelRunner {
  readonly info: ModelInfo;
  private readonly scheduler: SlotScheduler<Slot>;
  private readonly eogTokens: Token[];
  private readonly eogSet: ReadonlySet<Token>;
  private readonly preparedPrompts = new WeakMap<Prompt, PreparedPrompt>();
  /** Tokens in the model's vocabulary. */
  readonly vocabularySize: number;
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private embeddingQueue: Promise<unknown> = Promise.resolve();
  private readonly toolFormat: ToolCallFormat;
  private readonly grammars: GrammarCache;

  private constructor(
    private readonly config: LocalModelConfig,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly chatWrapper: ChatWrapper,
    slots: Slot[],
    private readonly prefixes: PrefixCache,
    private readonly loop: DecodeLoop,
  ) {
    this.info = {
      id: config.id,
      contextSize: context.contextSize,
      created: Math.floor(Date.now() / 1000),
      ownedBy: 'tokenmill',
    };
    this.scheduler = new SlotScheduler(slots, config.max_queue);
    this.vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    this.eogTokens = findEogTokens(model, this.vocabularySize);
    this.eogSet = new Set(this.eogTokens);
    this.toolFormat = selectToolCallFormat(chatWrapper);
    this.grammars = new GrammarCache(model.llama, this.toolFormat);
  }

  /** `promptCacheDirectory`: where `prompt_cache.disk_entries` keeps prefixes (a folder per model file), if anywhere. */
  static async load(llama: Llama, config: LocalModelConfig, promptCacheDirectory: string | null = null): Promise<LlamaModelRunner> {
    const model = await llama.loadModel({ modelPath: config.path });
    const contextSize = config.context_size ?? Math.min(model.trainContextSize, 4096);
    const context = await model.createContext({
      sequences: config.sequences,
      contextSize,
      batchSize: Math.min(config.batch_size, contextSize * config.sequences),
      threads: config.threads,
      flashAttention: config.flash_attention,
    });
    const hooks = NativeContextHooks.attach(context, threadSplit(config, model.size));
    const cores = availableParallelism();
    const loop = DecodeLoop.attach(context, model, (tokens, generating) => hooks.planThreads(tokens, generating) >= cores);
    const slots: Slot[] = [];
    for (let index = 0; index < config.sequences; index++) {
      // Sequence ids 0, 1, 2... in this order: PrefixCache.choose reads neighbours by index.
      slots.push({ sequence: context.getSequence({ contextShift: { size: 0 } }), lastUsed: 0, scope: null, pin: null });
    }
    const prefixes = await PrefixCache.create(slots, hooks, config, promptCacheDirectory);
    return new LlamaModelRunner(config, model, context, createChatWrapper(model, config.chat_template), slots, prefixes, loop);
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

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent[]> {
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
    // Work less urgent than interactive requests (priority 0; batch lines are 10) gives its sequence back when one waits.
    const preemption = new AbortController();
    const slot = await this.scheduler.acquire({
      priority: request.priority,
      deadline: request.deadline,
      signal,
      choose: (free) => this.prefixes.choose(free, prompt.tokens, scope, Date.now()),
      preempt: request.priority > 0 ? () => preemption.abort() : undefined,
    });
    try {
      const cachedTokens = await this.prefixes.prepare(slot, prompt.tokens, scope);
      if (request.echo) yield [{ type: 'text-delta', text: echoText(request.prompt, this.model), logprobs: null }];
      yield* this.run(slot.sequence, prompt, request, maxTokens, grammar, signal, preemption.signal, cachedTokens, pinnedTokens);
    } finally {
      this.prefixes.release(slot, prompt.tokens, pinnedTokens === null ? null : { tokens: pinnedTokens, ttlMs: request.cachePin!.ttlMs });
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
    preempted: AbortSignal,
    /** Prompt tokens the sequence already holds (PrefixCache.prepare). */
    cachedTokens: number,
    pinnedTokens: number | null,
  ): AsyncGenerator<EngineEvent[]> {
    // With a pin, the prompt tokens it covers that were computed now (not reused) are cache writes.
    const cacheWriteTokens = pinnedTokens === null ? 0 : Math.max(0, Math.min(pinnedTokens, prompt.tokens.length) - cachedTokens);
    const processed: EngineEvent = {
      type: 'prompt-processed',
      promptTokens: prompt.tokens.length,
      cachedTokens,
      ...(pinnedTokens === null ? {} : { pinnedTokens }),
    };
    const input = prompt.tokens.slice(cachedTokens);
    if (maxTokens === 0) {
      // Only the prompt: its state is computed and kept for prefix reuse (Anthropic's cache pre-warming).
      await this.evaluateOnly(sequence, input);
      yield [processed, { type: 'end', finishReason: 'length', usage: { promptTokens: prompt.tokens.length, cachedTokens, completionTokens: 0, cacheWriteTokens } }];
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
    const topLogprobs = request.logprobs;
    const eog = this.eogSet;

    // The decode loop asks `continueAfter` whether to go on as soon as a token is sampled, and evaluates it in the
    // next step while this generator handles the token (text, stop strings, events, the client's SSE chunk): the
    // same checks run in both places, and they agree (abort, preemption and the deadline only ever become true). A
    // stop string found in the text costs the one token already under way; it is never emitted. End-of-generation
    // tokens end the output and are not counted.
    let sampled = 0;
    const interruption = (): unknown =>
      signal.aborted
        ? new AbortedError()
        : preempted.aborted
          ? new TokenmillError('overloaded', 'preempted', 'A more urgent request needed this sequence; run this one again later.', { retryAfterSeconds: 0 })
          : null;
    const generation = this.loop.generate({
      sequence,
      tokens: input,
      sampling: {
        options: plan.options,
        dynamic: plan.dynamic,
        probabilities: topLogprobs !== null,
        continueAfter: (token) => {
          if (eog.has(token) || signal.aborted || preempted.aborted) return false;
          sampled++;
          plan.observe(token);
          return !stopTokens.has(token) && sampled < maxTokens && Date.now() <= request.deadline;
        },
      },
    });

    let completionTokens = 0;
    let previousToken = prompt.tokens[prompt.tokens.length - 1];
    let finishReason: FinishReason = 'stop';
    let stopped = false;
    /** The request's stop string that matched, if one did (the template's own stops are not reported). */
    let stopSequence: string | undefined;
    /** Why generation ended early: the client's abort, the deadline, or an engine failure. */
    let interrupted: unknown = null;
    /** This step's events, yielded as one batch at its end (or with the end event, after a break). */
    let batch: EngineEvent[] = [];
    try {
      for await (const { token, probabilities } of generation) {
        if (eog.has(token)) break;
        completionTokens++;
        if (completionTokens === 1) batch.push(processed);
        interrupted = interruption();
        if (interrupted !== null) break;
        if (stopTokens.has(token)) {
          stopped = true;
          break;
        }
        const overdue = Date.now() > request.deadline;
        const match = stopMatcher.push(decoder.push(token));
        const logprobs = topLogprobs === null || probabilities === null ? null : [this.logprobOf(token, previousToken, probabilities, topLogprobs)];
        previousToken = token;
        for (const event of reader.push(match.emit, logprobs)) batch.push(event);
        if (match.stopped) {
          stopped = true;
          if (match.matched !== undefined && request.stop.includes(match.matched)) stopSequence = match.matched;
          break;
        }
        if (completionTokens >= maxTokens) {
          finishReason = 'length';
          break;
        }
        if (overdue) {
          interrupted = new TokenmillError('timeout', 'request_timeout', 'The request exceeded its deadline.');
          break;
        }
        if (batch.length > 0) {
          yield batch;
          batch = [];
        }
      }
    } catch (error) {
      // Nothing was generated: the request failed before it started, and there is nothing to account for.
      if (completionTokens === 0) throw error;
      interrupted = error;
    } finally {
      // The sequence must be idle before it is released.
      generation.stop();
      await generation.finished;
    }
    const usage = { promptTokens: prompt.tokens.length, cachedTokens, completionTokens, cacheWriteTokens };
    if (interrupted !== null) {
      batch.push({ type: 'end', finishReason: 'cancelled', usage, error: interrupted });
      yield batch;
      return;
    }
    if (completionTokens === 0) batch.push(processed);
    if (!stopped) {
      const rest = stopMatcher.push(decoder.flush());
      if (rest.matched !== undefined && request.stop.includes(rest.matched)) stopSequence = rest.matched;
      const tail = rest.stopped ? rest.emit : rest.emit + stopMatcher.flush();
      if (tail.length > 0) for (const event of reader.push(tail, null)) batch.push(event);
    }
    const reason = reader.finish(finishReason);
    batch.push({ type: 'end', finishReason: reason, usage, ...(reason === 'stop' && stopSequence !== undefined ? { stopSequence } : {}) });
    yield batch;
  }

  /** Evaluates tokens on the sequence without sampling (the state is kept for prefix reuse). */
  private async evaluateOnly(sequence: LlamaContextSequence, tokens: Token[]): Promise<void> {
    if (tokens.length === 0) return;
    const generation = this.loop.generate({ sequence, tokens, sampling: null });
    for await (const _ of generation) {
      // no tokens are sampled; the loop ends (or throws the decode's error)
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
    await this.loop.close();
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

/** Weights x tokens a batch needs before `batch_threads: auto` splits it over more threads (docs/decisions/0016). */
const BATCH_WORK_FOR_MORE_THREADS = 256 * 1024 * 1024;
/**
 * Tokens from which a step that only evaluates prompts (no generation's next token in it) runs on `batch_threads`,
 * whatever the model's size (decision 0018): nothing waits on such a step but the prompts, and no consumer work runs
 * beside it. stories-260k, 95-token prompt: 15 ms on two threads against 26 on one.
 */
const PROMPT_TOKENS_FOR_MORE_THREADS = 32;

/**
 * The model's thread split: `batch_threads` and the batch sizes from which it applies (see the catalog schema): a
 * given `batch_threads_min_tokens` applies to every step; else steps holding a generation's next token need
 * BATCH_WORK_FOR_MORE_THREADS of work, prompt-only steps PROMPT_TOKENS_FOR_MORE_THREADS tokens (or fewer, if the first
 * rule asks fewer).
 */
export function threadSplit(
  config: Pick<LocalModelConfig, 'threads' | 'batch_threads' | 'batch_threads_min_tokens'>,
  modelBytes: number,
  cores = availableParallelism(),
): ThreadSplit {
  const batchThreads =
    config.batch_threads === null ? config.threads : config.batch_threads === 'auto' ? Math.max(cores, config.threads) : config.batch_threads;
  const batchMinTokens = config.batch_threads_min_tokens ?? Math.max(2, Math.ceil(BATCH_WORK_FOR_MORE_THREADS / Math.max(1, modelBytes)));
  const promptMinTokens = config.batch_threads_min_tokens ?? Math.min(batchMinTokens, PROMPT_TOKENS_FOR_MORE_THREADS);
  return { threads: config.threads, batchThreads, batchMinTokens, promptMinTokens };
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

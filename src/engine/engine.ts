/**
 * The engine contract. An engine runs models; it knows nothing of HTTP, accounts or money.
 * Every stream takes an AbortSignal: when it fires, generation stops within a token and the sequence is freed.
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** For role `tool`: the call this message answers. */
  toolCallId?: string;
  /** For role `assistant`: calls the assistant made. */
  toolCalls?: Array<{ id: string; name: string; arguments: string }>;
}

export type Prompt =
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; tokens: number[] };

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = disabled. */
  topK: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** 1 = disabled. */
  repetitionPenalty: number;
  /** Token id -> bias added to its logit (-100 bans it). */
  logitBias: Map<number, number>;
  /** null: a fresh random seed. */
  seed: number | null;
}

export interface GenerateRequest {
  model: string;
  prompt: Prompt;
  sampling: SamplingParams;
  /** Most tokens to generate; null: until the context is full. */
  maxTokens: number | null;
  /** End-of-generation tokens are ignored before this many tokens. */
  minTokens: number;
  ignoreEos: boolean;
  /** Stop strings; the matched stop text is not returned. */
  stop: string[];
  /** null: no log probabilities; else how many alternatives per token (0..20). */
  logprobs: number | null;
  /** Whether to emit the prompt's text first (completions `echo`). */
  echo: boolean;
  /** Lower runs first. Interactive 0, batch 10. */
  priority: number;
  /** Absolute time (ms since epoch) after which the request fails with a timeout. */
  deadline: number;
}

export interface TokenLogprob {
  token: string;
  /** Natural log of the probability. */
  logprob: number;
  bytes: number[];
  top: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  /** Tokens of the prompt. */
  promptTokens: number;
  /** Prompt tokens whose state was reused rather than computed. */
  cachedTokens: number;
  /** Tokens generated (including any stop sequence text that was cut). */
  completionTokens: number;
}

export type EngineEvent =
  /** The prompt is evaluated; generation begins. */
  | { type: 'prompt-processed'; promptTokens: number; cachedTokens: number }
  /** New output text (may be empty when held-back bytes are pending); logprobs when requested. */
  | { type: 'text-delta'; text: string; logprobs: TokenLogprob[] | null }
  /**
   * Generation is over. Every generation that started ends with this event, also when it was cut short:
   * then `finishReason` is `cancelled`, `error` says why (the client's abort, the deadline, a failure), and `usage`
   * counts what was computed, so it can be billed.
   */
  | { type: 'end'; finishReason: FinishReason | 'cancelled'; usage: Usage; error?: unknown };

export interface ModelInfo {
  id: string;
  /** Tokens per sequence. */
  contextSize: number;
  /** Seconds since epoch when it was loaded. */
  created: number;
  ownedBy: string;
}

export interface Engine {
  /** Loads every model; resolves when all are ready. */
  start(): Promise<void>;
  /** Whether every model is loaded. */
  ready(): boolean;
  models(): ModelInfo[];
  hasModel(model: string): boolean;
  /** Counts the tokens of a prompt as `generate` would see it. */
  countPromptTokens(model: string, prompt: Prompt): Promise<number>;
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent>;
  /** One L2-normalized vector per input, and the tokens counted. */
  embed(model: string, inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }>;
  tokenize(model: string, text: string, addSpecial: boolean): number[];
  detokenize(model: string, tokens: number[]): string;
  /** Stops taking work, aborts what runs and frees the models. */
  close(): Promise<void>;
}

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

/** A JSON value, as JSON.parse returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A function the model may call. */
export interface ToolDefinition {
  /** 1..64 letters, digits, `_` or `-`. */
  name: string;
  description: string | null;
  /** JSON Schema of the arguments object; null: the function takes no arguments (`{}`). */
  parameters: JsonValue | null;
  /** Where the definition came from (`tools[2].function`), for error messages. */
  param: string;
}

/** Which tool calls a tool-calling answer may hold. */
export type ToolChoice = 'auto' | 'required' | { name: string };

/**
 * A constraint on the output: every generated token must keep the output a prefix of the constraint's language, so
 * an output that ends normally (not cut by `maxTokens`) is always in it. `param` names the request field the
 * constraint came from, for error messages. With a constraint, end-of-generation is allowed only where the language
 * allows the output to end, and forced there; `minTokens` and `ignoreEos` do not apply.
 */
export type OutputConstraint =
  /** Exactly one JSON object. */
  | { kind: 'json-object' }
  /** One JSON value that validates against the schema (the engine refuses keywords it cannot enforce). */
  | { kind: 'json-schema'; schema: JsonValue; param: string }
  /** A GBNF grammar (llama.cpp's format) whose `root` rule is the whole output. */
  | { kind: 'gbnf'; grammar: string; param: string }
  /** A regular expression (ECMAScript syntax) that the whole output matches. */
  | { kind: 'regex'; pattern: string; param: string }
  /** Exactly one of the strings. */
  | { kind: 'choice'; choices: string[]; param: string }
  /**
   * Tool calls of the prompt's tools, in the model family's format. `auto`: the model may answer in text instead
   * (constrained by `text` when set); `required` or a named tool: the output is always one or more valid calls.
   */
  | { kind: 'tool-calls'; choice: ToolChoice; parallel: boolean; text: Exclude<OutputConstraint, { kind: 'tool-calls' | 'gbnf' }> | null };

export type Prompt =
  /**
   * `tools`: functions described to the model (rendered into the prompt by the model family's tool-call format).
   * `continueFinal`: the last message is an assistant message (without tool calls) that the answer continues
   * (Anthropic's prefill), rather than a finished turn followed by a new one.
   */
  | { kind: 'chat'; messages: ChatMessage[]; tools?: ToolDefinition[]; continueFinal?: boolean }
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
  /** Most tokens to generate; null: until the context is full; 0: only evaluate the prompt (to warm the cache). */
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
  /**
   * Computed prompt prefixes are reused only between requests of the same scope (Tokenmill passes the account id,
   * so one tenant's prompts never speed up, and so never leak through the timing of, another's). null: the shared
   * scope of unauthenticated use.
   */
  cacheScope: string | null;
  /** vLLM's `cache_salt`: prefixes are reused only between requests with the same salt (within the scope). */
  cacheSalt: string | null;
  /** null: free text. */
  constraint: OutputConstraint | null;
  /**
   * Keep the part of the prompt that `prefix` (a shorter prompt, rendered on its own) shares with it cached for
   * `ttlMs` after this request (Anthropic's `cache_control` breakpoints): while the pin lasts, other requests take
   * another free sequence rather than overwrite it, when one is free. Absent or null: no pin.
   */
  cachePin?: { prefix: Prompt; ttlMs: number } | null;
}

export interface TokenLogprob {
  token: string;
  /** Natural log of the probability. */
  logprob: number;
  bytes: number[];
  top: Array<{ token: string; logprob: number; bytes: number[] }>;
}

/** `tool_calls`: the output ended normally and holds tool calls. */
export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  /** Tokens of the prompt. */
  promptTokens: number;
  /** Prompt tokens whose state was reused rather than computed. */
  cachedTokens: number;
  /** Tokens generated (including any stop sequence text that was cut). */
  completionTokens: number;
  /**
   * Prompt tokens computed and kept in the prompt cache for a `cachePin` (Anthropic's cache writes, billed at the
   * `cache_write` price); a part of `promptTokens`, never of `cachedTokens`. Absent: 0.
   */
  cacheWriteTokens?: number;
}

export type EngineEvent =
  /** The prompt is evaluated; generation begins. `pinnedTokens`: with a `cachePin`, how many prompt tokens it covers. */
  | { type: 'prompt-processed'; promptTokens: number; cachedTokens: number; pinnedTokens?: number }
  /** New output text (may be empty when held-back bytes are pending); logprobs when requested. */
  | { type: 'text-delta'; text: string; logprobs: TokenLogprob[] | null }
  /**
   * A piece of tool call number `call` (0, 1, ...): its first delta carries `id` and `name` (and maybe the first
   * arguments text), later ones only more of `arguments`, a JSON text that is complete once generation ends normally.
   */
  | { type: 'tool-call-delta'; call: number; id?: string; name?: string; arguments: string }
  /**
   * Generation is over. Every generation that started ends with this event, also when it was cut short:
   * then `finishReason` is `cancelled`, `error` says why (the client's abort, the deadline, a failure), and `usage`
   * counts what was computed, so it can be billed.
   */
  | {
      type: 'end';
      finishReason: FinishReason | 'cancelled';
      usage: Usage;
      error?: unknown;
      /** Which of the request's `stop` strings ended generation (finishReason `stop`); absent for other ends. */
      stopSequence?: string;
    };

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
  /**
   * The generation's events in order, in batches: each batch holds the events that became available together (one
   * decode step, one network read of an upstream's stream) and is never empty, so a consumer takes one async step
   * per batch rather than per event (docs/decisions/0022). The `end` event is the last of the last batch. Events are
   * fresh objects that the consumer owns (runChoices tags them with their choice index).
   */
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent[]>;
  /** One L2-normalized vector per input, and the tokens counted. */
  embed(model: string, inputs: Array<string | number[]>, signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens: number }>;
  tokenize(model: string, text: string, addSpecial: boolean): number[];
  detokenize(model: string, tokens: number[]): string;
  /** Requests waiting and sequences busy, per model (metrics, readiness). */
  load(): Array<{ model: string; queued: number; busy: number }>;
  /** Stops taking work, aborts what runs and frees the models. */
  close(): Promise<void>;
}

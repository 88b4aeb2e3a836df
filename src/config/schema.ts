import { z } from 'zod';

/**
 * The one schema of Tokenmill's configuration: the YAML catalog file, then environment variables, then CLI flags,
 * in that order of precedence. Every setting is documented here; `tokenmill serve --help` and the README list them.
 */

export const pricesSchema = z
  .object({
    /** USD per 1M prompt tokens that were computed. */
    input: z.number().nonnegative(),
    /** USD per 1M prompt tokens served from the prompt cache. Defaults to the input price. */
    cached_input: z.number().nonnegative().optional(),
    /** USD per 1M generated tokens. */
    output: z.number().nonnegative(),
    /** USD per 1M prompt tokens written to the prompt cache (Anthropic-style cache writes). Defaults to the input price. */
    cache_write: z.number().nonnegative().optional(),
  })
  .strict();

/** The llama.cpp settings of a local model (at the model's top level, or in a `kind: llama` deployment). */
const llamaSettings = {
  /** Tokens of context per sequence (prompt plus output). Default: the model's trained context, capped at 4096. */
  context_size: z.number().int().min(16).max(1 << 20).nullable().default(null),
  /** Parallel sequences of one llama.cpp context (continuous batching). */
  sequences: z.number().int().min(1).max(256).default(8),
  /** llama.cpp threads. 1 is fastest for small models on small machines (measured; see README). */
  threads: z.number().int().min(1).max(256).default(1),
  /**
   * llama.cpp threads for big batches (prompts, several sequences decoding together), as llama-server's `-tb`.
   * `auto`: the machine's cores (never fewer than `threads`); null: `threads` (no split).
   */
  batch_threads: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).nullable().default('auto'),
  /**
   * The fewest tokens a batch needs to run on `batch_threads` (smaller ones run on `threads`). null: from the model's
   * size, so that a batch holds about 256 MiB of weights x tokens (2 tokens at least): extra threads only pay for
   * themselves on enough work, and cost up to 15x on tiny steps (docs/decisions/0016); and a step that only
   * evaluates prompts from 32 tokens (decision 0018). A number applies to every step.
   */
  batch_threads_min_tokens: z.number().int().min(1).max(1 << 20).nullable().default(null),
  /** llama.cpp's flash attention: `auto` (llama.cpp decides: on where the backend has it), or forced on or off. */
  flash_attention: z.union([z.literal('auto'), z.boolean()]).default('auto'),
  /** Tokens per llama.cpp batch (prompt evaluation chunk). */
  batch_size: z.number().int().min(8).max(65536).default(512),
  /** Requests that may wait beyond the busy sequences; more get 429. */
  max_queue: z.number().int().min(0).max(100000).default(64),
  /** Jinja chat template overriding the GGUF's own. null: the GGUF's template, else the Llama-2 fallback. */
  chat_template: z.string().nullable().default(null),
  /** Whether the model serves /v1/embeddings (a second, embedding context is created on first use). */
  embeddings: z.boolean().default(true),
};

/** Share of a model's traffic relative to its other deployments (least outstanding requests, weighted). */
const weight = z.number().positive().max(1_000_000).default(1);

/** A deployment on this machine: a GGUF file loaded into llama.cpp. At most one per model. */
export const llamaDeploymentSchema = z
  .object({
    kind: z.literal('llama'),
    /** Path of the GGUF file, relative to the config file. */
    path: z.string().min(1),
    ...llamaSettings,
    weight,
  })
  .strict();

/** A deployment on an OpenAI-compatible server (vLLM, SGLang, llama-server, OpenAI, Together, another Tokenmill). */
export const openAIDeploymentSchema = z
  .object({
    kind: z.literal('openai'),
    /** Base URL of the API, up to and including `/v1` (e.g. http://10.0.0.5:8000/v1). */
    base_url: z.url({ protocol: /^https?$/ }),
    /** The upstream's own model id, sent as `model`. */
    model: z.string().min(1),
    /** Name of the environment variable that holds the upstream's API key. null: no Authorization header. */
    api_key_env: z.string().min(1).nullable().default(null),
    /**
     * The key itself, resolved from `api_key_env` when the config is loaded (writing a key in the file is refused).
     * Set directly only by tests that build a config without the environment.
     */
    api_key: z.string().min(1).nullable().default(null),
    /** Longest wait for the response headers, and longest silence between two chunks of a stream, ms. */
    timeout_ms: z.number().int().min(1).max(3_600_000).default(30_000),
    /** Longest a whole upstream request may take, ms (the request's own deadline applies as well). */
    total_timeout_ms: z.number().int().min(1).max(24 * 3_600_000).default(600_000),
    weight,
  })
  .strict();

/** A deployment on a server of Anthropic's Messages API (Anthropic itself, or a compatible server such as Tokenmill). */
export const anthropicDeploymentSchema = z
  .object({
    kind: z.literal('anthropic'),
    /**
     * Base URL of the API without `/v1`, as Anthropic's SDKs take it (e.g. https://api.anthropic.com or
     * http://127.0.0.1:9000): requests go to `{base_url}/v1/messages`.
     */
    base_url: z
      .url({ protocol: /^https?$/ })
      .refine((url) => !/\/v1\/*$/.test(url), 'the base_url of an anthropic deployment ends before /v1 (requests go to {base_url}/v1/messages)'),
    /** The upstream's own model id, sent as `model`. */
    model: z.string().min(1),
    /** Name of the environment variable that holds the upstream's API key (sent as `x-api-key`). null: no key sent. */
    api_key_env: z.string().min(1).nullable().default(null),
    /** The key itself, resolved from `api_key_env` when the config is loaded (tests only may set it directly). */
    api_key: z.string().min(1).nullable().default(null),
    /** The `anthropic-version` header. */
    anthropic_version: z.string().min(1).default('2023-06-01'),
    /**
     * `max_tokens` sent when a request sets none (Anthropic requires it; OpenAI chat requests may omit it), capped by
     * the model's context left after the prompt's estimate. Keep it within the upstream model's output limit.
     */
    default_max_tokens: z.number().int().min(1).max(1 << 24).default(4096),
    /** Longest wait for the response headers, and longest silence between two events of a stream, ms. */
    timeout_ms: z.number().int().min(1).max(3_600_000).default(30_000),
    /** Longest a whole upstream request may take, ms (the request's own deadline applies as well). */
    total_timeout_ms: z.number().int().min(1).max(24 * 3_600_000).default(600_000),
    weight,
  })
  .strict();

export const deploymentSchema = z.discriminatedUnion('kind', [llamaDeploymentSchema, openAIDeploymentSchema, anthropicDeploymentSchema]);

/** Retries, fallbacks and the circuit breaker of a model's deployments. */
export const routingSchema = z
  .object({
    /** Retries on the same deployment after a retryable failure (connection error, 408, 409, 429, 5xx), before the next. */
    retries: z.number().int().min(0).max(10).default(1),
    /** First backoff before a retry, ms; doubled each retry, with jitter. */
    backoff_ms: z.number().int().min(0).max(60_000).default(100),
    /** Longest `retry-after` honoured before a retry, ms; a longer one moves on to the next deployment. */
    max_retry_after_ms: z.number().int().min(0).max(600_000).default(5_000),
    /** Consecutive failures that take a deployment out (circuit open). */
    breaker_failures: z.number().int().min(1).max(1000).default(5),
    /** How long an open circuit stays out before one probe request is let through (half-open), ms. */
    breaker_cooldown_ms: z.number().int().min(1).max(3_600_000).default(30_000),
  })
  .strict();

export const modelSchema = z
  .object({
    /** The id clients send as `model`. */
    id: z.string().min(1).max(256),
    /**
     * Path of the GGUF file, relative to the config file: the model is one local deployment with the settings below.
     * Either `path` or `deployments` is set. (For upstream-only models `context_size` is the context clients are
     * told about and admission plans with; default 8192.)
     */
    path: z.string().min(1).optional(),
    ...llamaSettings,
    /** Where the model runs: local llama.cpp (at most one), OpenAI-compatible and Anthropic upstreams, balanced by weight. */
    deployments: z.array(deploymentSchema).min(1).max(64).optional(),
    routing: routingSchema.default(routingSchema.parse({})),
    /**
     * For models without a local deployment: the id of a local catalog model whose tokenizer (and chat template)
     * counts this model's prompts for admission. null: an estimate from the prompt's UTF-8 bytes (3 bytes a token).
     */
    tokenizer: z.string().min(1).nullable().default(null),
    prices: pricesSchema.default({ input: 0.1, cached_input: 0.025, output: 0.4 }),
    /**
     * Prompt-prefix reuse: `account` (default) reuses a computed prefix only for the account that computed it;
     * `global` shares prefixes between accounts (faster, but prompts can leak through timing). A request's
     * `cache_salt` narrows either scope.
     */
    prompt_cache: z
      .object({
        scope: z.enum(['account', 'global']).default('account'),
        /**
         * Hot prefixes (reused at least once) kept on disk under `<data_dir>/prompt-cache/`, so that they survive
         * eviction and restarts; 0 (default): none. The files hold KV state derived from prompts.
         */
        disk_entries: z.number().int().min(0).max(100_000).default(0),
        /** Shorter prefixes are not saved to disk, tokens. */
        disk_min_tokens: z.number().int().min(1).default(256),
      })
      .strict()
      .default({ scope: 'account', disk_entries: 0, disk_min_tokens: 256 }),
  })
  .strict()
  .superRefine((model, context) => {
    if ((model.path === undefined) === (model.deployments === undefined)) {
      context.addIssue({ code: 'custom', message: 'a model needs either path (one local model) or deployments, not both', path: ['path'] });
    }
    if ((model.deployments ?? []).filter((deployment) => deployment.kind === 'llama').length > 1) {
      context.addIssue({ code: 'custom', message: 'a model may have at most one llama deployment', path: ['deployments'] });
    }
  });

export const serverSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest accepted request body, bytes. */
    body_limit_bytes: z.number().int().min(1024).default(4 * 1024 * 1024),
    /** Deadline of each inference request from arrival to its last token, ms. */
    request_timeout_ms: z.number().int().min(100).default(600_000),
    /** On SIGTERM: how long in-flight requests may run before they are aborted, ms. */
    shutdown_grace_ms: z.number().int().min(0).default(30_000),
    /** Interval of `: ping` SSE comments while a stream waits for its first token, ms. */
    sse_ping_interval_ms: z.number().int().min(50).default(5_000),
    /** pino log level. */
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export const storageSchema = z
  .object({
    /** Directory of the SQLite file (and, later, uploaded files). */
    data_dir: z.string().default('./data'),
    /** postgres://... switches the store to PostgreSQL; null keeps SQLite. */
    database_url: z.string().nullable().default(null),
    /** redis://... shares rate limits across instances; null keeps them in memory. */
    redis_url: z.string().nullable().default(null),
  })
  .strict();

export const authSchema = z
  .object({
    /** false: no keys, no limits, no billing (anyone may call; for local use and overhead benchmarks). */
    enabled: z.boolean().default(true),
    /** The admin key (from TOKENMILL_ADMIN_KEY). null: generated and printed at the first start, stored hashed. */
    admin_key: z.string().min(16).nullable().default(null),
    /** Create a `default` account with credits and a demo key at the first start, and print the key. */
    bootstrap_demo_account: z.boolean().default(true),
    /** Credits of the demo account, USD. */
    demo_credits_usd: z.number().nonnegative().default(10),
    /**
     * Limits of a key that sets none of its own (as a provider's default tier); null: unlimited. With a limit every
     * response carries its x-ratelimit-* headers.
     */
    default_key_limits: z
      .object({
        rpm: z.number().int().positive().nullable().default(10_000),
        tpm: z.number().int().positive().nullable().default(10_000_000),
        max_concurrency: z.number().int().positive().nullable().default(null),
      })
      .strict()
      .default({ rpm: 10_000, tpm: 10_000_000, max_concurrency: null }),
    /**
     * How long a key found by its secret is used without looking it up again, ms (0: every request looks it up). A
     * revocation or a limit changed through another instance, or in the database, takes up to this long to apply
     * here; through this instance's admin API it applies at once.
     */
    key_cache_ttl_ms: z.number().int().nonnegative().default(5000),
  })
  .strict();

export const batchesSchema = z
  .object({
    /** How long a batch may run before it expires, seconds (the API accepts `24h`; this is what it means). */
    window_seconds: z.number().int().min(1).default(86_400),
    /** Batch lines one instance runs at once at most (they also wait for idle sequences). */
    concurrency: z.number().int().min(1).max(1024).default(64),
    /** How often an idle batch worker looks for work, expiries and cancellations, ms. */
    poll_interval_ms: z.number().int().min(10).default(500),
    /** How long a claimed line stays taken without a heartbeat before another worker may run it, ms. */
    lease_ms: z.number().int().min(100).default(30_000),
    /** Price multiplier of batch lines (0.5: half price). */
    discount: z.number().min(0).max(1).default(0.5),
    /**
     * Batch lines started while interactive requests are in flight (or were within the last second), per instance.
     * On CPU a decode step costs about in proportion to its sequences, so batch lines beside interactive ones slow
     * them; idle capacity is filled again once interactive traffic stops.
     */
    lines_beside_interactive: z.number().int().min(0).max(1024).default(1),
  })
  .strict();

export const filesSchema = z
  .object({
    /** Largest uploaded file, bytes. */
    max_bytes: z.number().int().min(1).default(100 * 1024 * 1024),
  })
  .strict();

export const configFileSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    storage: storageSchema.default(storageSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    batches: batchesSchema.default(batchesSchema.parse({})),
    files: filesSchema.default(filesSchema.parse({})),
    models: z.array(modelSchema).min(1),
  })
  .strict();

export type PricesConfig = z.infer<typeof pricesSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type DeploymentConfig = z.infer<typeof deploymentSchema>;
export type LlamaDeploymentConfig = z.infer<typeof llamaDeploymentSchema>;
export type OpenAIDeploymentConfig = z.infer<typeof openAIDeploymentSchema>;
export type AnthropicDeploymentConfig = z.infer<typeof anthropicDeploymentSchema>;
export type RoutingConfig = z.infer<typeof routingSchema>;
/** A model served by llama.cpp in this process: the catalog entry with its local deployment's settings. */
export type LocalModelConfig = ModelConfig & { path: string };
export type ServerConfig = z.infer<typeof serverSchema>;
export type StorageConfig = z.infer<typeof storageSchema>;
export type AuthConfig = z.infer<typeof authSchema>;
export type BatchesConfig = z.infer<typeof batchesSchema>;
export type FilesConfig = z.infer<typeof filesSchema>;
export type TokenmillConfig = z.infer<typeof configFileSchema>;

/** Environment variables read once at start-up, with their doc line (listed by `--help` and the README). */
export const environmentVariables = {
  TOKENMILL_CONFIG: 'path of the YAML model catalog (default: config/tokenmill.yaml in the package)',
  PORT: 'port to listen on (default 8080)',
  HOST: 'address to listen on (default 127.0.0.1)',
  TOKENMILL_LOG_LEVEL: 'log level: fatal, error, warn, info, debug, trace, silent (default info)',
  TOKENMILL_REQUEST_TIMEOUT_MS: 'deadline of each inference request, ms (default 600000)',
  TOKENMILL_SHUTDOWN_GRACE_MS: 'how long in-flight requests may finish after SIGTERM, ms (default 30000)',
  TOKENMILL_SSE_PING_INTERVAL_MS: 'interval of SSE keep-alive comments while a stream waits, ms (default 5000)',
  TOKENMILL_BODY_LIMIT_BYTES: 'largest accepted request body, bytes (default 4194304)',
  TOKENMILL_DATA_DIR: 'directory of the SQLite database (default ./data)',
  DATABASE_URL: 'postgres://... to store accounts, keys and usage in PostgreSQL instead of SQLite',
  REDIS_URL: 'redis://... to share rate limits between instances (default: in memory)',
  TOKENMILL_ADMIN_KEY: 'the admin API key (default: generated at the first start, printed once, stored hashed)',
  TOKENMILL_AUTH: 'set to "off" to accept any key with no limits and no billing (default on)',
  TOKENMILL_DEFAULT_KEY_RPM: 'requests per minute of a key that sets no rpm of its own; "none": unlimited (default 10000)',
  TOKENMILL_DEFAULT_KEY_TPM: 'tokens per minute of a key that sets no tpm of its own; "none": unlimited (default 10000000)',
  TOKENMILL_KEY_CACHE_TTL_MS: 'how long a key found by its secret is used before it is looked up again, ms; a revocation through another instance applies within it; 0: no cache (default 5000)',
  TOKENMILL_BATCH_WINDOW_SECONDS: 'how long a batch may run before it expires, seconds (default 86400)',
  TOKENMILL_BATCH_CONCURRENCY: 'batch lines one instance runs at once at most (default 64)',
  TOKENMILL_BATCH_POLL_INTERVAL_MS: 'how often idle batch workers look for work, ms (default 500)',
  TOKENMILL_BATCH_LEASE_MS: 'how long a claimed batch line stays taken without a heartbeat, ms (default 30000)',
  TOKENMILL_BATCH_DISCOUNT: 'price multiplier of batch lines (default 0.5)',
  TOKENMILL_BATCH_LINES_BESIDE_INTERACTIVE: 'batch lines started while interactive requests run (default 1)',
  TOKENMILL_FILES_MAX_BYTES: 'largest uploaded file, bytes (default 104857600)',
} as const;

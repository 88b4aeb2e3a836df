import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configFileSchema, type ModelConfig, type TokenmillConfig } from './schema.js';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const defaultConfigPath = path.join(packageRoot, 'config', 'tokenmill.yaml');

export interface ConfigSources {
  /** `--config`; else TOKENMILL_CONFIG; else the bundled catalog. Ignored when `modelPath` is given. */
  configPath?: string;
  /** `--model`: serve this one GGUF file with default settings, no catalog. */
  modelPath?: string;
  /** Flags that override the file and the environment. */
  overrides?: { port?: number; host?: string; threads?: number; sequences?: number; contextSize?: number };
  env: NodeJS.ProcessEnv;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration once: file, then environment, then flags. The result is frozen. */
export function loadConfig(sources: ConfigSources): TokenmillConfig {
  const raw = sources.modelPath ? singleModelCatalog(sources.modelPath) : readCatalog(sources);
  applyEnvironment(raw, sources.env);
  applyOverrides(raw, sources.overrides ?? {});
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`Invalid configuration:\n${z.prettifyError(parsed.error)}`);
  }
  const ids = new Set<string>();
  for (const model of parsed.data.models) {
    if (ids.has(model.id)) throw new ConfigError(`Invalid configuration: model id '${model.id}' appears twice`);
    ids.add(model.id);
  }
  for (const model of parsed.data.models) {
    if (model.tokenizer === null) continue;
    const tokenizer = parsed.data.models.find((candidate) => candidate.id === model.tokenizer);
    if (!tokenizer || (tokenizer.path === undefined && !tokenizer.deployments?.some((deployment) => deployment.kind === 'llama'))) {
      throw new ConfigError(`Invalid configuration: the tokenizer of model '${model.id}' must be a local model of the catalog, not '${model.tokenizer}'`);
    }
  }
  resolveApiKeys(parsed.data, sources.env);
  return deepFreeze(parsed.data);
}

interface RawCatalog {
  server?: Record<string, unknown>;
  models?: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

function readCatalog(sources: ConfigSources): RawCatalog {
  const file = path.resolve(sources.configPath ?? sources.env.TOKENMILL_CONFIG ?? defaultConfigPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`The config file ${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`The config file ${file} must hold a mapping with a 'models' list`);
  }
  const catalog = raw as RawCatalog;
  const base = path.dirname(file);
  if (Array.isArray(catalog.models)) {
    for (const model of catalog.models) {
      if (model && typeof model.path === 'string') model.path = path.resolve(base, model.path);
      for (const deployment of Array.isArray(model?.deployments) ? (model.deployments as Array<Record<string, unknown>>) : []) {
        if (deployment && typeof deployment.path === 'string') deployment.path = path.resolve(base, deployment.path);
        if (deployment && 'api_key' in deployment) {
          throw new ConfigError(
            `The config file ${file} holds an api_key for model '${String(model.id)}': put the key in an environment variable and name it with api_key_env`,
          );
        }
      }
    }
  }
  return catalog;
}

function singleModelCatalog(modelPath: string): RawCatalog {
  const resolved = path.resolve(modelPath);
  const id = path.basename(resolved).replace(/\.gguf$/i, '');
  return { models: [{ id, path: resolved }] };
}

function applyEnvironment(raw: RawCatalog, env: NodeJS.ProcessEnv): void {
  const server: Record<string, unknown> = { ...(raw.server ?? {}) };
  const numeric = (name: string, key: string) => {
    const value = env[name];
    if (value === undefined || value === '') return;
    const number = Number(value);
    if (!Number.isFinite(number)) throw new ConfigError(`${name} must be a number, got '${value}'`);
    server[key] = number;
  };
  numeric('PORT', 'port');
  numeric('TOKENMILL_REQUEST_TIMEOUT_MS', 'request_timeout_ms');
  numeric('TOKENMILL_SHUTDOWN_GRACE_MS', 'shutdown_grace_ms');
  numeric('TOKENMILL_SSE_PING_INTERVAL_MS', 'sse_ping_interval_ms');
  numeric('TOKENMILL_BODY_LIMIT_BYTES', 'body_limit_bytes');
  if (env.HOST) server.host = env.HOST;
  if (env.TOKENMILL_LOG_LEVEL) server.log_level = env.TOKENMILL_LOG_LEVEL;
  raw.server = server;
  const storage: Record<string, unknown> = { ...((raw.storage as Record<string, unknown> | undefined) ?? {}) };
  if (env.TOKENMILL_DATA_DIR) storage.data_dir = env.TOKENMILL_DATA_DIR;
  if (env.DATABASE_URL) storage.database_url = env.DATABASE_URL;
  if (env.REDIS_URL) storage.redis_url = env.REDIS_URL;
  raw.storage = storage;
  const auth: Record<string, unknown> = { ...((raw.auth as Record<string, unknown> | undefined) ?? {}) };
  if (env.TOKENMILL_ADMIN_KEY) auth.admin_key = env.TOKENMILL_ADMIN_KEY;
  if (env.TOKENMILL_AUTH) {
    if (!['on', 'off'].includes(env.TOKENMILL_AUTH)) throw new ConfigError(`TOKENMILL_AUTH must be 'on' or 'off'`);
    auth.enabled = env.TOKENMILL_AUTH === 'on';
  }
  const defaults: Record<string, unknown> = { ...((auth.default_key_limits as Record<string, unknown> | undefined) ?? {}) };
  for (const [name, key] of [['TOKENMILL_DEFAULT_KEY_RPM', 'rpm'], ['TOKENMILL_DEFAULT_KEY_TPM', 'tpm']] as const) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const number = Number(value);
    if (value !== 'none' && !Number.isInteger(number)) throw new ConfigError(`${name} must be an integer or 'none', got '${value}'`);
    defaults[key] = value === 'none' ? null : number;
  }
  if (Object.keys(defaults).length > 0) auth.default_key_limits = defaults;
  if (env.TOKENMILL_KEY_CACHE_TTL_MS !== undefined && env.TOKENMILL_KEY_CACHE_TTL_MS !== '') {
    const ttl = Number(env.TOKENMILL_KEY_CACHE_TTL_MS);
    if (!Number.isFinite(ttl)) throw new ConfigError(`TOKENMILL_KEY_CACHE_TTL_MS must be a number, got '${env.TOKENMILL_KEY_CACHE_TTL_MS}'`);
    auth.key_cache_ttl_ms = ttl;
  }
  raw.auth = auth;
  const section = (name: string, settings: Record<string, string>) => {
    const values: Record<string, unknown> = { ...((raw[name] as Record<string, unknown> | undefined) ?? {}) };
    for (const [variable, key] of Object.entries(settings)) {
      const value = env[variable];
      if (value === undefined || value === '') continue;
      const number = Number(value);
      if (!Number.isFinite(number)) throw new ConfigError(`${variable} must be a number, got '${value}'`);
      values[key] = number;
    }
    raw[name] = values;
  };
  section('batches', {
    TOKENMILL_BATCH_WINDOW_SECONDS: 'window_seconds',
    TOKENMILL_BATCH_CONCURRENCY: 'concurrency',
    TOKENMILL_BATCH_POLL_INTERVAL_MS: 'poll_interval_ms',
    TOKENMILL_BATCH_LEASE_MS: 'lease_ms',
    TOKENMILL_BATCH_DISCOUNT: 'discount',
    TOKENMILL_BATCH_LINES_BESIDE_INTERACTIVE: 'lines_beside_interactive',
  });
  section('files', { TOKENMILL_FILES_MAX_BYTES: 'max_bytes' });
}

function applyOverrides(raw: RawCatalog, overrides: NonNullable<ConfigSources['overrides']>): void {
  const server: Record<string, unknown> = { ...(raw.server ?? {}) };
  if (overrides.port !== undefined) server.port = overrides.port;
  if (overrides.host !== undefined) server.host = overrides.host;
  raw.server = server;
  for (const model of raw.models ?? []) {
    if (overrides.threads !== undefined) model.threads = overrides.threads;
    if (overrides.sequences !== undefined) model.sequences = overrides.sequences;
    if (overrides.contextSize !== undefined) model.context_size = overrides.contextSize;
    for (const deployment of Array.isArray(model.deployments) ? (model.deployments as Array<Record<string, unknown>>) : []) {
      if (deployment?.kind !== 'llama') continue;
      if (overrides.threads !== undefined) deployment.threads = overrides.threads;
      if (overrides.sequences !== undefined) deployment.sequences = overrides.sequences;
      if (overrides.contextSize !== undefined) deployment.context_size = overrides.contextSize;
    }
  }
}

/** Each upstream deployment's key, read from the environment variable its `api_key_env` names (once, here). */
function resolveApiKeys(config: TokenmillConfig, env: NodeJS.ProcessEnv): void {
  for (const model of config.models) {
    for (const deployment of model.deployments ?? []) {
      if (deployment.kind === 'llama' || deployment.api_key_env === null) continue;
      const key = env[deployment.api_key_env];
      if (key === undefined || key === '') {
        throw new ConfigError(
          `The environment variable ${deployment.api_key_env} (api_key_env of model '${model.id}', deployment ${deployment.base_url}) is not set`,
        );
      }
      deployment.api_key = key;
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export type { ModelConfig, TokenmillConfig };

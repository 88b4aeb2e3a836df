import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { loadConfig, packageRoot } from '../../src/config/load-config.js';
import { configFileSchema, type TokenmillConfig } from '../../src/config/schema.js';
import { startServer, type RunningServer } from '../../src/main.js';

export const STORIES = 'stories-260k';
export const TINY_RANDOM = 'llama-2-tiny-random';
export const modelsDir = path.join(packageRoot, 'models');

export interface TestServer {
  server: RunningServer;
  url: string;
  client: OpenAI;
  config: TokenmillConfig;
  close(): Promise<void>;
}

/** Model settings for tests: the bundled catalog, with overrides per model or for all. */
export interface TestServerOptions {
  server?: Record<string, unknown>;
  models?: Array<Record<string, unknown>>;
  /** Default: disabled (tests of the API surface); tests of accounts pass `{enabled: true, ...}`. */
  auth?: Record<string, unknown>;
  /** Default: SQLite in a fresh temporary directory. */
  storage?: Record<string, unknown>;
  /** Batch settings (e.g. a short `window_seconds`). */
  batches?: Record<string, unknown>;
  files?: Record<string, unknown>;
}

/** The bundled catalog as a test config, on a free port, silent; `models` entries get the schema's defaults. */
export function testConfig(options: TestServerOptions = {}): TokenmillConfig {
  const base = loadConfig({ env: {} });
  const raw = {
    server: { ...base.server, port: 0, log_level: 'silent', ...(options.server ?? {}) },
    storage: { data_dir: mkdtempSync(path.join(tmpdir(), 'tokenmill-test-')), ...(options.storage ?? {}) },
    auth: { enabled: false, ...(options.auth ?? {}) },
    batches: { ...(options.batches ?? {}) },
    files: { ...(options.files ?? {}) },
    models: options.models ?? base.models.map((model) => ({ ...model, prices: { ...model.prices } })),
  };
  return configFileSchema.parse(raw);
}

/** Starts a real server in this process on a free port, with an official OpenAI client pointed at it. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const config = testConfig(options);
  const server = await startServer(config);
  const url = server.url;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'test-key', maxRetries: 0 });
  return { server, url, client, config, close: () => server.shutdown() };
}

/** Starts the CLI as a child process (for signal tests); resolves once it answers /ready. */
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const cli = path.join(packageRoot, 'bin', 'tokenmill.js');
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], {
    env: {
      ...process.env,
      TOKENMILL_LOG_LEVEL: 'info',
      TOKENMILL_AUTH: 'off',
      TOKENMILL_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'tokenmill-cli-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const check = () => {
      const match = /"url":"(http:\/\/[^"]+)".*Tokenmill is ready/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(match[1]);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  return { child, url, output: () => output };
}

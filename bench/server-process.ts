import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { exited, OutputTail, stopChild, trackChild } from './child-processes.js';
import { repositoryRoot } from './paths.js';
import { mainThreadCpuMs, processCpuMs } from './process-cpu.js';

export interface TokenmillServerOptions {
  /** The id clients send as `model`. */
  modelId: string;
  /** Path of the GGUF file (relative paths are resolved against the current directory). */
  modelPath: string;
  /** Parallel sequences of the model's context. */
  sequences: number;
  /** llama.cpp threads. */
  threads: number;
  /** Context tokens per sequence. */
  contextSize: number;
  /** How long the model may take to load before the bench gives up, ms. */
  readyTimeoutMs: number;
  /** Extra environment (e.g. TOKENMILL_AUTH=on, DATABASE_URL): it overrides the catalog. */
  env?: Record<string, string>;
  /** The catalog's `models` instead of the one GGUF model (e.g. upstream deployments); the model fields are then unused. */
  catalogModels?: Array<Record<string, unknown>>;
  /** llama.cpp flash attention of the model (default: llama.cpp's choice). */
  flashAttention?: boolean | 'auto';
  /** Extra node flags for the server process (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

export interface TokenmillServer {
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  /** CPU time the server process has used so far (all threads), ms; null where /proc is missing. */
  cpuMs(): number | null;
  /** CPU time of its main thread (the event loop) alone, ms; null where /proc is missing. */
  mainThreadCpuMs(): number | null;
  /** The last few KB the server wrote to stdout and stderr, to explain a failure. */
  logTail(): string;
  /** SIGTERM (SIGKILL after 5 s), then removes the temporary catalog. */
  stop(): Promise<void>;
}

/** Starts `tokenmill serve` as a child process with a one-model catalog, and waits until GET /ready answers 200. */
export async function startTokenmill(options: TokenmillServerOptions): Promise<TokenmillServer> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tokenmill-bench-'));
  // Removed by stop(), or at exit however the bench ends (Ctrl-C included: the signal handler calls process.exit).
  const removeDirectory = (): void => rmSync(directory, { recursive: true, force: true });
  process.once('exit', removeDirectory);
  const configPath = path.join(directory, 'catalog.yaml');
  await writeFile(configPath, toYaml(catalog(options, path.join(directory, 'data'))));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...(options.nodeFlags ?? []), path.join(repositoryRoot, 'bin', 'tokenmill.js'), 'serve', '--config', configPath, '--port', String(port)],
    { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TOKENMILL_LOG_LEVEL: 'warn', ...options.env } },
  );
  return watchServer(child, `http://127.0.0.1:${port}`, '/ready', options.readyTimeoutMs, async () => {
    await rm(directory, { recursive: true, force: true });
    process.off('exit', removeDirectory);
  });
}

/**
 * Tracks a spawned HTTP server (llama-server too) until GET `readyPath` answers 200, and returns its handle; if it
 * exits or is not ready in time, stops it and throws with its output. `cleanup` runs after it stopped.
 */
export async function watchServer(
  child: ChildProcess,
  baseUrl: string,
  readyPath: string,
  readyTimeoutMs: number,
  cleanup: () => Promise<void> = async () => {},
): Promise<TokenmillServer> {
  trackChild(child);
  const stdout = new OutputTail(child.stdout!);
  const stderr = new OutputTail(child.stderr!);
  const stop = async (): Promise<void> => {
    await stopChild(child, 5_000);
    await cleanup();
  };
  try {
    await waitReady(baseUrl, readyTimeoutMs, exited(child), readyPath);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\nserver stdout:\n${stdout}\nserver stderr:\n${stderr}`);
  }
  const pid = child.pid;
  return {
    baseUrl,
    stop,
    cpuMs: () => (pid === undefined ? null : processCpuMs(pid)),
    mainThreadCpuMs: () => (pid === undefined ? null : mainThreadCpuMs(pid)),
    logTail: () => `stdout:\n${stdout}\nstderr:\n${stderr}`,
  };
}

/**
 * The temporary catalog: one model, log level warn (no per-request logging on the hot path), auth off (no keys, limits
 * or billing: the serving path alone), and the data directory inside the temporary directory.
 */
function catalog(options: TokenmillServerOptions, dataDirectory: string): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', log_level: 'warn' },
    storage: { data_dir: dataDirectory },
    auth: { enabled: false },
    models: options.catalogModels ?? [
      {
        id: options.modelId,
        path: path.resolve(options.modelPath),
        context_size: options.contextSize,
        sequences: options.sequences,
        threads: options.threads,
        flash_attention: options.flashAttention ?? 'auto',
        max_queue: 256,
        embeddings: false,
      },
    ],
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls GET `readyPath` every 100 ms until it answers 200; fails if the server exits or `timeoutMs` (ms) pass. */
async function waitReady(baseUrl: string, timeoutMs: number, exit: Promise<number | null>, readyPath = '/ready'): Promise<void> {
  let exitCode: number | null | undefined;
  void exit.then((code) => (exitCode = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`the server exited with code ${exitCode} before it was ready`);
    try {
      const response = await fetch(`${baseUrl}${readyPath}`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the server was not ready within ${timeoutMs} ms`);
}

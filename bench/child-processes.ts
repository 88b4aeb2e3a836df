import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

/** Every child the bench started and that has not exited yet; all are killed when the bench exits, however. */
const liveChildren = new Set<ChildProcess>();

export function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

export function killAllChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
}

/**
 * Kills the children on every way out: normal exit, an uncaught error (Node emits 'exit' then too), Ctrl-C, SIGTERM.
 * Call once, at start-up.
 */
export function installChildCleanup(): void {
  process.once('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllChildren();
      process.exit(130);
    });
  }
}

/** Resolves with the exit code (null when killed by a signal), or at once if the child already exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs` (ms). */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** Keeps the last `maxChars` characters a stream wrote (draining it, so the child never blocks on a full pipe). */
export class OutputTail {
  private text = '';

  constructor(
    stream: Readable | null,
    private readonly maxChars = 4000,
  ) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      this.text = (this.text + chunk).slice(-this.maxChars);
    });
  }

  toString(): string {
    return this.text;
  }
}

/**
 * Starts `node script ...args`, a bench server that prints its URL as its first line on stdout and exits when its
 * parent closes its stdin; resolves with that URL once printed.
 */
export async function spawnBenchServer(script: string, args: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  trackChild(child);
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      text += chunk;
      const line = text.split('\n')[0];
      if (text.includes('\n')) resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it listened`)));
  });
  return { url, close: () => stopChild(child, 2000) };
}

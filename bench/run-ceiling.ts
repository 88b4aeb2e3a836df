import { spawn } from 'node:child_process';
import path from 'node:path';
import type { CeilingOptions, CeilingResult } from './ceiling.js';
import { exited, OutputTail, trackChild } from './child-processes.js';
import { compiledBenchDirectory, repositoryRoot } from './paths.js';

export interface CeilingRunOptions extends CeilingOptions {
  /** The whole run's deadline; the child is killed past it, ms. */
  timeoutMs: number;
}

/** Runs dist/bench/ceiling.js in a child process and returns what it measured. */
export async function runCeiling(options: CeilingRunOptions): Promise<CeilingResult> {
  const args = [
    path.join(compiledBenchDirectory, 'ceiling.js'),
    '--model', options.modelPath,
    '--concurrency', options.concurrency.join(','),
    '--requests', options.requests.join(','),
    '--sequences', String(options.sequences),
    '--threads', String(options.threads),
    '--context-size', String(options.contextSize),
    '--max-tokens', String(options.maxTokens),
    '--prompt-tokens', String(options.promptTokens),
    '--temperature', String(options.temperature),
    '--flash-attention', String(options.flashAttention),
    '--exit-with-parent',
  ];
  // stdin stays open and unused: the child exits when it closes, i.e. when this process dies.
  const child = spawn(process.execPath, args, { cwd: repositoryRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(child);
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  const stderr = new OutputTail(child.stderr);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const code = await exited(child);
  clearTimeout(timer);
  child.stdin.destroy();
  if (code !== 0) throw new Error(`the ceiling process failed (exit code ${code}):\n${stderr}`);
  const lastLine = stdout.trim().split('\n').pop() ?? '';
  const parsed: unknown = JSON.parse(lastLine);
  if (!isCeilingResult(parsed)) throw new Error(`the ceiling process printed no result: ${lastLine.slice(0, 200)}`);
  return parsed;
}

function isCeilingResult(value: unknown): value is CeilingResult {
  return typeof value === 'object' && value !== null && 'levels' in value && Array.isArray(value.levels);
}

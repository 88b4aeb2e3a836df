import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import type { LocalModelConfig } from '../../config/schema.js';
import { modelNotFound, TokenmillError } from '../../core/errors.js';
import type { Engine, EngineEvent, GenerateRequest, ModelInfo, Prompt } from '../engine.js';
import { LlamaModelRunner } from './model-runner.js';

export interface LlamaEngineOptions {
  models: readonly LocalModelConfig[];
  /** Receives llama.cpp's own log lines (warnings and errors). */
  log?: (level: 'warn' | 'error', message: string) => void;
  /** Where models with `prompt_cache.disk_entries` keep prefixes on disk (a folder per model file). */
  promptCacheDirectory?: string;
}

/** The local engine: every catalog model loaded into llama.cpp through node-llama-cpp. */
export class LlamaEngine implements Engine {
  private llama: Llama | undefined;
  private readonly runners = new Map<string, LlamaModelRunner>();
  private loaded = false;

  constructor(private readonly options: LlamaEngineOptions) {}

  async start(): Promise<void> {
    this.llama = await getLlama({
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trimEnd();
        if (text.length === 0) return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.options.log?.('error', text);
        else if (level === LlamaLogLevel.warn) this.options.log?.('warn', text);
      },
    });
    for (const config of this.options.models) {
      this.runners.set(config.id, await LlamaModelRunner.load(this.llama, config, this.options.promptCacheDirectory ?? null));
    }
    this.loaded = true;
  }

  ready(): boolean {
    return this.loaded;
  }

  models(): ModelInfo[] {
    return [...this.runners.values()].map((runner) => runner.info);
  }

  hasModel(model: string): boolean {
    return this.runners.has(model);
  }

  /** Requests waiting and sequences busy, per model (for metrics and readiness). */
  load(): Array<{ model: string; queued: number; busy: number }> {
    return [...this.runners.entries()].map(([model, runner]) => ({
      model,
      queued: runner.queueDepth,
      busy: runner.busySequences,
    }));
  }

  async countPromptTokens(model: string, prompt: Prompt): Promise<number> {
    return this.runner(model).countPromptTokens(prompt);
  }

  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent[]> {
    return this.runner(request.model).generate(request, signal);
  }

  embed(model: string, inputs: Array<string | number[]>, signal: AbortSignal) {
    return this.runner(model).embed(inputs, signal);
  }

  tokenize(model: string, text: string, addSpecial: boolean): number[] {
    return this.runner(model).tokenize(text, addSpecial);
  }

  detokenize(model: string, tokens: number[]): string {
    return this.runner(model).detokenize(tokens);
  }

  async close(): Promise<void> {
    this.loaded = false;
    for (const runner of this.runners.values()) await runner.close();
    this.runners.clear();
    await this.llama?.dispose();
  }

  private runner(model: string): LlamaModelRunner {
    const runner = this.runners.get(model);
    if (!runner) {
      if (!this.loaded && this.options.models.some((config) => config.id === model)) {
        throw new TokenmillError('unavailable', 'model_loading', `The model '${model}' is still loading.`);
      }
      throw modelNotFound(model);
    }
    return runner;
  }
}

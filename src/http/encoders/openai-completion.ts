import type { ChoiceEvent } from '../../core/inference/run-choices.js';
import { UsageTotals } from '../../core/inference/run-choices.js';
import type { TokenLogprob } from '../../engine/engine.js';
import type { Completion, CompletionLogprobs } from '../../protocol/openai/completions.js';
import { SYSTEM_FINGERPRINT, type ResponseMeta } from './openai-chat.js';
import { usageToWire } from './usage.js';

/** Builds OpenAI's legacy logprobs object; `offset` is the text length before these tokens. */
function completionLogprobs(logprobs: readonly TokenLogprob[], offset: number): CompletionLogprobs {
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let position = offset;
  for (const entry of logprobs) {
    result.tokens.push(entry.token);
    result.token_logprobs.push(entry.logprob);
    result.top_logprobs.push(Object.fromEntries(entry.top.map((top) => [top.token, top.logprob])));
    result.text_offset.push(position);
    position += entry.token.length;
  }
  return result;
}

export class CompletionCollector {
  private readonly texts: string[];
  /** Built per event as the stream encoder does, so `text_offset` counts the text before each token (echo too). */
  private readonly logprobs: Array<CompletionLogprobs | null>;
  private readonly finish: string[];
  readonly usage: UsageTotals;

  constructor(
    private readonly meta: ResponseMeta,
    choices: number,
    n: number,
    wantLogprobs: boolean,
  ) {
    this.texts = new Array(choices).fill('');
    this.logprobs = Array.from({ length: choices }, () =>
      wantLogprobs ? { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] } : null,
    );
    this.finish = new Array(choices).fill('stop');
    this.usage = new UsageTotals(n);
  }

  add(event: ChoiceEvent): void {
    if (event.type === 'text-delta') {
      const logprobs = this.logprobs[event.index];
      if (event.logprobs && logprobs) {
        const part = completionLogprobs(event.logprobs, this.texts[event.index].length);
        logprobs.tokens.push(...part.tokens);
        logprobs.token_logprobs.push(...part.token_logprobs);
        logprobs.top_logprobs.push(...part.top_logprobs);
        logprobs.text_offset.push(...part.text_offset);
      }
      this.texts[event.index] += event.text;
    } else if (event.type === 'end' && event.finishReason !== 'cancelled') {
      this.finish[event.index] = event.finishReason;
      this.usage.add(event.index, event.usage);
    }
  }

  result(): Completion {
    return {
      id: this.meta.id,
      object: 'text_completion',
      created: this.meta.created,
      model: this.meta.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: this.texts.map((text, index) => ({
        index,
        text,
        logprobs: this.logprobs[index],
        finish_reason: this.finish[index],
      })),
      usage: usageToWire(this.usage),
    };
  }
}

export class CompletionChunkEncoder {
  readonly usage: UsageTotals;
  private readonly offsets: number[];

  constructor(
    private readonly meta: ResponseMeta,
    choices: number,
    n: number,
    private readonly includeUsage: boolean,
  ) {
    this.usage = new UsageTotals(n);
    this.offsets = new Array(choices).fill(0);
  }

  encode(event: ChoiceEvent): string | null {
    switch (event.type) {
      case 'prompt-processed':
      case 'tool-call-delta':
        return null;
      case 'text-delta': {
        const logprobs = event.logprobs ? completionLogprobs(event.logprobs, this.offsets[event.index]) : null;
        this.offsets[event.index] += event.text.length;
        return this.chunk([{ index: event.index, text: event.text, logprobs, finish_reason: null }]);
      }
      case 'end':
        if (event.finishReason === 'cancelled') return null;
        this.usage.add(event.index, event.usage);
        return this.chunk([{ index: event.index, text: '', logprobs: null, finish_reason: event.finishReason }]);
    }
  }

  usageChunk(): string | null {
    if (!this.includeUsage) return null;
    return this.chunk([], usageToWire(this.usage));
  }

  private chunk(choices: Completion['choices'], usage?: Completion['usage']): string {
    const body: Completion = {
      id: this.meta.id,
      object: 'text_completion',
      created: this.meta.created,
      model: this.meta.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...(this.includeUsage ? { usage: usage ?? null } : {}),
    };
    return JSON.stringify(body);
  }
}

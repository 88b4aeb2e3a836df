import type { ChoiceEvent } from '../../core/inference/run-choices.js';
import { UsageTotals } from '../../core/inference/run-choices.js';
import type { TokenLogprob } from '../../engine/engine.js';
import type { ChatCompletion, ChatCompletionChunk, ChatLogprobs, ToolCallWire } from '../../protocol/openai/chat-completions.js';
import { usageToWire } from './usage.js';

export const SYSTEM_FINGERPRINT = 'fp_tokenmill';

export interface ResponseMeta {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

function chatLogprobs(logprobs: readonly TokenLogprob[]): ChatLogprobs {
  return {
    content: logprobs.map((entry) => ({
      token: entry.token,
      logprob: entry.logprob,
      bytes: entry.bytes,
      top_logprobs: entry.top,
    })),
  };
}

/** Collects a whole chat completion (non-streaming). */
export class ChatCompletionCollector {
  private readonly texts: string[];
  private readonly logprobs: Array<TokenLogprob[] | null>;
  private readonly finish: string[];
  private readonly toolCalls: ToolCallWire[][];
  readonly usage: UsageTotals;

  constructor(
    private readonly meta: ResponseMeta,
    choices: number,
    n: number,
    wantLogprobs: boolean,
  ) {
    this.texts = new Array(choices).fill('');
    this.toolCalls = Array.from({ length: choices }, () => []);
    this.logprobs = Array.from({ length: choices }, () => (wantLogprobs ? [] : null));
    this.finish = new Array(choices).fill('stop');
    this.usage = new UsageTotals(n);
  }

  add(event: ChoiceEvent): void {
    switch (event.type) {
      case 'text-delta':
        this.texts[event.index] += event.text;
        if (event.logprobs) this.logprobs[event.index]?.push(...event.logprobs);
        break;
      case 'tool-call-delta': {
        const calls = this.toolCalls[event.index];
        calls[event.call] ??= { id: event.id ?? '', type: 'function', function: { name: event.name ?? '', arguments: '' } };
        calls[event.call].function.arguments += event.arguments;
        break;
      }
      case 'end':
        if (event.finishReason === 'cancelled') break;
        this.finish[event.index] = event.finishReason;
        this.usage.add(event.index, event.usage);
        break;
    }
  }

  result(): ChatCompletion {
    return {
      id: this.meta.id,
      object: 'chat.completion',
      created: this.meta.created,
      model: this.meta.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: this.texts.map((content, index) => ({
        index,
        message: message(content, this.toolCalls[index]),
        logprobs: this.logprobs[index] ? chatLogprobs(this.logprobs[index]!) : null,
        finish_reason: this.finish[index],
      })),
      usage: usageToWire(this.usage),
    };
  }
}

/** The assistant message: with tool calls and no text, content is null (as OpenAI sends it). */
function message(content: string, toolCalls: ToolCallWire[]): ChatCompletion['choices'][number]['message'] {
  if (toolCalls.length === 0) return { role: 'assistant', content, refusal: null };
  return { role: 'assistant', content: content.length > 0 ? content : null, refusal: null, tool_calls: toolCalls };
}

/** Encodes chat events as OpenAI `chat.completion.chunk` payloads. */
export class ChatChunkEncoder {
  readonly usage: UsageTotals;
  private readonly usageField: { usage?: null };

  constructor(
    private readonly meta: ResponseMeta,
    n: number,
    private readonly includeUsage: boolean,
  ) {
    this.usage = new UsageTotals(n);
    this.usageField = includeUsage ? { usage: null } : {};
  }

  /** The chunk for one event, or null when the event has nothing to send. */
  encode(event: ChoiceEvent): string | null {
    switch (event.type) {
      case 'prompt-processed':
        return this.chunk(event.index, { role: 'assistant', content: '' }, null, null);
      case 'text-delta':
        return this.chunk(event.index, { content: event.text }, event.logprobs ? chatLogprobs(event.logprobs) : null, null);
      case 'tool-call-delta': {
        // The first delta of a call carries its id, type and name; later ones only more arguments.
        if (event.id === undefined && event.arguments.length === 0) return null;
        const call =
          event.id === undefined
            ? { index: event.call, function: { arguments: event.arguments } }
            : { index: event.call, id: event.id, type: 'function' as const, function: { name: event.name, arguments: event.arguments } };
        return this.chunk(event.index, { tool_calls: [call] }, null, null);
      }
      case 'end':
        if (event.finishReason === 'cancelled') return null;
        this.usage.add(event.index, event.usage);
        return this.chunk(event.index, {}, null, event.finishReason);
    }
  }

  /** The final usage chunk, when the client asked for it. */
  usageChunk(): string | null {
    if (!this.includeUsage) return null;
    const chunk: ChatCompletionChunk = { ...this.base(), choices: [], usage: usageToWire(this.usage) };
    return JSON.stringify(chunk);
  }

  private chunk(
    index: number,
    delta: ChatCompletionChunk['choices'][number]['delta'],
    logprobs: ChatLogprobs | null,
    finishReason: string | null,
  ): string {
    const chunk: ChatCompletionChunk = {
      ...this.base(),
      choices: [{ index, delta, logprobs, finish_reason: finishReason }],
      ...this.usageField,
    };
    return JSON.stringify(chunk);
  }

  private base() {
    return {
      id: this.meta.id,
      object: 'chat.completion.chunk' as const,
      created: this.meta.created,
      model: this.meta.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  }
}

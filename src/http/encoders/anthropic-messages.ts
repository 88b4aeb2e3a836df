import type { ChoiceEvent } from '../../core/inference/run-choices.js';
import type { FinishReason, Usage } from '../../engine/engine.js';
import type {
  AnthropicMessage,
  AnthropicUsage,
  MessageStreamEvent,
  ResponseContentBlock,
  StopReason,
} from '../../protocol/anthropic/messages.js';
import type { StreamEncoder } from '../serve-generation.js';
import type { SseWriter } from '../sse.js';
import { mapStopReason } from './map-stop-reason.js';

export interface MessageMeta {
  /** `msg_...` */
  id: string;
  model: string;
}

/**
 * Anthropic's usage: the prompt split into cache reads, cache writes (up to the last breakpoint) and the rest, so
 * that `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` is the whole prompt, as Anthropic
 * counts it.
 */
export function anthropicUsage(usage: Usage, breakpointTokens: number | null): AnthropicUsage {
  const read = usage.cachedTokens;
  const written = breakpointTokens === null ? 0 : Math.max(0, Math.min(breakpointTokens, usage.promptTokens) - read);
  return {
    input_tokens: usage.promptTokens - read - written,
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: written,
    cache_read_input_tokens: read,
  };
}

/** Engine call ids are `call_<24>`; Anthropic's tool_use ids are `toolu_<...>`. */
export function toolUseId(callId: string): string {
  return `toolu_${callId.startsWith('call_') ? callId.slice('call_'.length) : callId}`;
}

/** A tool call's arguments as the `input` object; arguments cut short by max_tokens give `{}`. */
function parseInput(argumentsText: string): unknown {
  try {
    const value: unknown = JSON.parse(argumentsText);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/** Collects a whole Anthropic message (non-streaming): a text block (when there is text) and/or tool_use blocks. */
export class AnthropicMessageCollector {
  private text = '';
  private readonly calls: Array<{ id: string; name: string; arguments: string }> = [];
  private stopReason: StopReason = 'end_turn';
  private stopSequence: string | null = null;
  private usage: Usage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  /** Prompt tokens up to the last cache breakpoint (the engine's pin); null without one. */
  private pinnedTokens: number | null = null;

  constructor(private readonly meta: MessageMeta) {}

  add(event: ChoiceEvent): void {
    switch (event.type) {
      case 'prompt-processed':
        this.pinnedTokens = event.pinnedTokens ?? null;
        break;
      case 'text-delta':
        this.text += event.text;
        break;
      case 'tool-call-delta':
        this.calls[event.call] ??= { id: toolUseId(event.id ?? ''), name: event.name ?? '', arguments: '' };
        this.calls[event.call].arguments += event.arguments;
        break;
      case 'end':
        if (event.finishReason === 'cancelled') break;
        this.stopReason = mapStopReason(event.finishReason, event.stopSequence);
        this.stopSequence = event.stopSequence ?? null;
        this.usage = event.usage;
        break;
    }
  }

  result(): AnthropicMessage {
    const content: ResponseContentBlock[] = [];
    // No empty text block: an answer with no text (max_tokens 0, an immediate end) has empty content, as Anthropic's.
    if (this.text.length > 0) content.push({ type: 'text', text: this.text });
    for (const call of this.calls) content.push({ type: 'tool_use', id: call.id, name: call.name, input: parseInput(call.arguments) });
    return {
      id: this.meta.id,
      type: 'message',
      role: 'assistant',
      model: this.meta.model,
      content,
      stop_reason: this.stopReason,
      stop_sequence: this.stopSequence,
      usage: anthropicUsage(this.usage, this.pinnedTokens),
    };
  }
}

/**
 * Writes Anthropic's stream events, as its API sends them: `message_start` (usage of the prompt), then per content
 * block `content_block_start`, its deltas (`text_delta`, `input_json_delta`) and `content_block_stop`, a `ping`
 * after the first block starts, then `message_delta` (stop_reason, usage) and `message_stop`. Errors after the stream
 * started are an `error` event with Anthropic's error body.
 */
export class AnthropicStreamEncoder implements StreamEncoder {
  private openBlock: { index: number; kind: 'text' | 'tool_use' } | null = null;
  private blocks = 0;
  private end: { finishReason: FinishReason; stopSequence?: string; usage: Usage } | null = null;
  private pinnedTokens: number | null = null;

  constructor(private readonly meta: MessageMeta) {}

  write(event: ChoiceEvent, writer: SseWriter): void {
    switch (event.type) {
      case 'prompt-processed': {
        this.pinnedTokens = event.pinnedTokens ?? null;
        const usage = anthropicUsage({ promptTokens: event.promptTokens, cachedTokens: event.cachedTokens, completionTokens: 0 }, this.pinnedTokens);
        const message: AnthropicMessage = {
          id: this.meta.id,
          type: 'message',
          role: 'assistant',
          model: this.meta.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage,
        };
        send(writer, { type: 'message_start', message });
        break;
      }
      case 'text-delta':
        if (event.text.length === 0) break;
        if (this.openBlock?.kind !== 'text') this.startBlock(writer, 'text', { type: 'text', text: '' });
        send(writer, { type: 'content_block_delta', index: this.openBlock!.index, delta: { type: 'text_delta', text: event.text } });
        break;
      case 'tool-call-delta':
        if (event.id !== undefined) {
          this.startBlock(writer, 'tool_use', { type: 'tool_use', id: toolUseId(event.id), name: event.name ?? '', input: {} });
        }
        if (event.arguments.length > 0 && this.openBlock?.kind === 'tool_use') {
          send(writer, {
            type: 'content_block_delta',
            index: this.openBlock.index,
            delta: { type: 'input_json_delta', partial_json: event.arguments },
          });
        }
        break;
      case 'end':
        if (event.finishReason === 'cancelled') break;
        this.end = { finishReason: event.finishReason, stopSequence: event.stopSequence, usage: event.usage };
        break;
    }
  }

  finish(writer: SseWriter): void {
    if (this.end === null) return;
    this.closeBlock(writer);
    send(writer, {
      type: 'message_delta',
      delta: { stop_reason: mapStopReason(this.end.finishReason, this.end.stopSequence), stop_sequence: this.end.stopSequence ?? null },
      usage: anthropicUsage(this.end.usage, this.pinnedTokens),
    });
    send(writer, { type: 'message_stop' });
  }

  fail(body: object, writer: SseWriter): void {
    writer.event('error', JSON.stringify(body));
  }

  ping(writer: SseWriter): void {
    send(writer, { type: 'ping' });
  }

  private startBlock(writer: SseWriter, kind: 'text' | 'tool_use', block: ResponseContentBlock): void {
    this.closeBlock(writer);
    const index = this.blocks++;
    this.openBlock = { index, kind };
    send(writer, { type: 'content_block_start', index, content_block: block });
    if (index === 0) send(writer, { type: 'ping' });
  }

  private closeBlock(writer: SseWriter): void {
    if (this.openBlock === null) return;
    send(writer, { type: 'content_block_stop', index: this.openBlock.index });
    this.openBlock = null;
  }
}

function send(writer: SseWriter, event: MessageStreamEvent): void {
  writer.event(event.type, JSON.stringify(event));
}

import type { EngineEvent, FinishReason, Usage } from '../../engine/engine.js';
import type { AnthropicErrorBody, AnthropicUsage, MessageStreamEvent, StopReason } from '../../protocol/anthropic/messages.js';
import { fromToolUseId } from './request-body.js';

/**
 * One event of an upstream's Messages stream: Anthropic's stream events, its mid-stream `error`, and the fields
 * newer API versions add (usage fields may be absent or null; deltas of block types Tokenmill does not serve, such as
 * `thinking_delta`, are skipped).
 */
export type UpstreamStreamEvent =
  | MessageStreamEvent
  | AnthropicErrorBody
  | { type: 'message_delta'; delta: { stop_reason: string | null; stop_sequence?: string | null }; usage?: Partial<NullableUsage> | null }
  | { type: 'content_block_delta'; index: number; delta: { type: string } };

type NullableUsage = { [key in keyof AnthropicUsage]: number | null };

/** A mid-stream `error` event: the upstream's error type and message. */
export class StreamErrorEvent extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = 'StreamErrorEvent';
  }
}

/**
 * Turns an upstream's Messages stream into engine events, and remembers what the end event needs: the stop reason
 * and stop sequence (`message_delta`), the usage (prompt counts from `message_start`, output from `message_delta`:
 * promptTokens = input + cache reads + cache writes, cachedTokens = cache reads), and the characters streamed (for
 * the estimate when the upstream sent no usage). Content blocks are numbered across text and tool_use; tool calls
 * are numbered 0, 1, ... among themselves, as the engine numbers them.
 */
export class MessageStreamDecoder {
  finishReason: FinishReason | null = null;
  stopSequence: string | null = null;
  /** Whether `message_stop` arrived. */
  stopped = false;
  /** Characters of output text and tool-call arguments streamed so far. */
  outputCharacters = 0;
  private input: { input: number; read: number; written: number } | null = null;
  private outputTokens: number | null = null;
  /** Content block index -> tool call number, and whether the call got any arguments text. */
  private readonly calls = new Map<number, { call: number; arguments: boolean }>();

  /** The prompt's counts from `message_start`; null until it came. */
  get promptUsage(): { promptTokens: number; cachedTokens: number; cacheWriteTokens: number } | null {
    if (this.input === null) return null;
    return { promptTokens: this.input.input + this.input.read + this.input.written, cachedTokens: this.input.read, cacheWriteTokens: this.input.written };
  }

  /** The upstream's usage; null when it sent none. */
  get usage(): Usage | null {
    const prompt = this.promptUsage;
    if (prompt === null) return null;
    return {
      promptTokens: prompt.promptTokens,
      cachedTokens: prompt.cachedTokens,
      completionTokens: this.outputTokens ?? 0,
      cacheWriteTokens: prompt.cacheWriteTokens,
    };
  }

  /** Throws `StreamErrorEvent` for an `error` event. */
  decode(event: UpstreamStreamEvent): EngineEvent[] {
    switch (event.type) {
      case 'message_start':
        this.readUsage(event.message.usage);
        return [];
      case 'content_block_start': {
        const block = event.content_block;
        if (block.type === 'text') return this.text(block.text);
        if (block.type !== 'tool_use') return [];
        const call = this.calls.size;
        this.calls.set(event.index, { call, arguments: false });
        this.outputCharacters += block.name.length;
        return [{ type: 'tool-call-delta', call, id: fromToolUseId(block.id), name: block.name, arguments: '' }];
      }
      case 'content_block_delta': {
        const delta = event.delta;
        if (delta.type === 'text_delta') return this.text((delta as { text: string }).text);
        if (delta.type !== 'input_json_delta') return [];
        const partial = (delta as { partial_json: string }).partial_json;
        const call = this.calls.get(event.index);
        if (!call || partial.length === 0) return [];
        call.arguments = true;
        this.outputCharacters += partial.length;
        return [{ type: 'tool-call-delta', call: call.call, arguments: partial }];
      }
      case 'content_block_stop': {
        // A call without arguments streams no JSON at all; the engine's contract wants a complete JSON text.
        const call = this.calls.get(event.index);
        if (!call || call.arguments) return [];
        call.arguments = true;
        return [{ type: 'tool-call-delta', call: call.call, arguments: '{}' }];
      }
      case 'message_delta':
        if (event.delta.stop_reason) this.finishReason = mapStopReason(event.delta.stop_reason);
        this.stopSequence = event.delta.stop_sequence ?? null;
        if (event.usage) this.readUsage(event.usage);
        return [];
      case 'message_stop':
        this.stopped = true;
        return [];
      case 'error':
        throw new StreamErrorEvent(event.error?.type ?? 'api_error', event.error?.message ?? 'an error event');
      default:
        // `ping` and event types of later API versions.
        return [];
    }
  }

  private text(text: string): EngineEvent[] {
    if (text.length === 0) return [];
    this.outputCharacters += text.length;
    return [{ type: 'text-delta', text, logprobs: null }];
  }

  /** `message_start` holds the prompt's counts; `message_delta` the output's (cumulative), and maybe final input counts. */
  private readUsage(usage: Partial<NullableUsage>): void {
    if (typeof usage.input_tokens === 'number') {
      this.input = {
        input: usage.input_tokens ?? this.input?.input ?? 0,
        read: usage.cache_read_input_tokens ?? this.input?.read ?? 0,
        written: usage.cache_creation_input_tokens ?? this.input?.written ?? 0,
      };
    }
    if (typeof usage.output_tokens === 'number') this.outputTokens = usage.output_tokens;
  }
}

/** Anthropic's stop reasons as the engine's finish reasons; anything unknown (refusal, pause_turn) ends normally. */
export function mapStopReason(reason: StopReason | string): FinishReason {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

/** The HTTP status Anthropic gives each error type, for an error that came inside a stream. */
export function statusOfErrorType(type: string): number {
  switch (type) {
    case 'invalid_request_error':
      return 400;
    case 'authentication_error':
      return 401;
    case 'permission_error':
      return 403;
    case 'not_found_error':
      return 404;
    case 'request_too_large':
      return 413;
    case 'rate_limit_error':
      return 429;
    case 'overloaded_error':
      return 529;
    default:
      return 500;
  }
}

import type { FinishReason } from '../../engine/engine.js';
import type { StopReason } from '../../protocol/anthropic/messages.js';

/**
 * An engine finish reason as Anthropic names it: `length` is `max_tokens`, `tool_calls` is `tool_use`, and `stop`
 * is `stop_sequence` when one of the request's stop sequences matched (the engine's `stopSequence`), else `end_turn`.
 */
export function mapStopReason(finishReason: FinishReason, stopSequence: string | undefined): StopReason {
  switch (finishReason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'stop':
      return stopSequence === undefined ? 'end_turn' : 'stop_sequence';
  }
}

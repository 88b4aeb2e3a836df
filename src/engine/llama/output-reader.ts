import type { EngineEvent, FinishReason, TokenLogprob } from '../engine.js';

/**
 * Reads the generated text (after stop strings were cut) into engine events. The plain reader passes text through;
 * a tool-call format's reader turns calls into `tool-call-delta` events.
 */
export interface OutputReader {
  /** Events for the next piece of output text; logprobs are those of the tokens that made it. */
  push(text: string, logprobs: TokenLogprob[] | null): EngineEvent[];
  /** The finish reason of a generation that ended with `reason`. */
  finish(reason: FinishReason): FinishReason;
}

export class TextOutputReader implements OutputReader {
  push(text: string, logprobs: TokenLogprob[] | null): EngineEvent[] {
    return text.length > 0 || logprobs !== null ? [{ type: 'text-delta', text, logprobs }] : [];
  }

  finish(reason: FinishReason): FinishReason {
    return reason;
  }
}

import type { EngineEvent, FinishReason, TokenLogprob } from '../../engine/engine.js';
import { mapFinishReason } from './map-finish-reason.js';

interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
}

interface WireTopLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
}

interface WireChoice {
  index?: number;
  delta?: {
    content?: string | null;
    tool_calls?: Array<{ index?: number; id?: string | null; function?: { name?: string | null; arguments?: string | null } }> | null;
  };
  text?: string | null;
  logprobs?: {
    content?: Array<WireTopLogprob & { top_logprobs?: WireTopLogprob[] | null }> | null;
    tokens?: string[];
    token_logprobs?: Array<number | null>;
    top_logprobs?: Array<Record<string, number> | null> | null;
  } | null;
  finish_reason?: string | null;
}

/** One parsed `data:` payload of an OpenAI chat or completions stream. */
export interface WireChunk {
  choices?: WireChoice[];
  usage?: WireUsage | null;
  error?: unknown;
}

/**
 * Turns the chunks of one streamed choice into engine events, and remembers what the end event needs: the finish
 * reason, the upstream's usage (from the last chunk of `stream_options.include_usage`), and how many characters were
 * streamed (for the estimate when the upstream reports no usage).
 */
export class ChunkDecoder {
  finishReason: FinishReason | null = null;
  usage: { promptTokens: number; cachedTokens: number; completionTokens: number } | null = null;
  /** Characters of output text and tool-call arguments streamed so far. */
  outputCharacters = 0;

  decode(chunk: WireChunk): EngineEvent[] {
    const events: EngineEvent[] = [];
    if (chunk.usage) {
      this.usage = {
        promptTokens: chunk.usage.prompt_tokens ?? 0,
        cachedTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
        completionTokens: chunk.usage.completion_tokens ?? 0,
      };
    }
    // A request for one choice: a second choice would be an upstream's bug; it is ignored.
    const choice = chunk.choices?.find((candidate) => (candidate.index ?? 0) === 0);
    if (!choice) return events;
    const text = choice.delta?.content ?? choice.text ?? '';
    const logprobs = readLogprobs(choice.logprobs);
    if (text.length > 0 || logprobs !== null) {
      this.outputCharacters += text.length;
      events.push({ type: 'text-delta', text, logprobs });
    }
    for (const call of choice.delta?.tool_calls ?? []) {
      const argumentsText = call.function?.arguments ?? '';
      this.outputCharacters += argumentsText.length;
      const event: Extract<EngineEvent, { type: 'tool-call-delta' }> = { type: 'tool-call-delta', call: call.index ?? 0, arguments: argumentsText };
      if (call.id) event.id = call.id;
      if (call.function?.name) event.name = call.function.name;
      events.push(event);
    }
    if (choice.finish_reason) this.finishReason = mapFinishReason(choice.finish_reason);
    return events;
  }
}

const encoder = new TextEncoder();

function bytesOf(entry: WireTopLogprob): number[] {
  return entry.bytes ?? [...encoder.encode(entry.token)];
}

/** Chat logprobs (`content[]`) or completions logprobs (`tokens`, `token_logprobs`, `top_logprobs`) as the engine's. */
function readLogprobs(wire: WireChoice['logprobs']): TokenLogprob[] | null {
  if (!wire) return null;
  if (wire.content) {
    return wire.content.map((entry) => ({
      token: entry.token,
      logprob: entry.logprob,
      bytes: bytesOf(entry),
      top: (entry.top_logprobs ?? []).map((top) => ({ token: top.token, logprob: top.logprob, bytes: bytesOf(top) })),
    }));
  }
  if (wire.tokens) {
    return wire.tokens.map((token, index) => ({
      token,
      logprob: wire.token_logprobs?.[index] ?? 0,
      bytes: [...encoder.encode(token)],
      top: Object.entries(wire.top_logprobs?.[index] ?? {}).map(([top, logprob]) => ({ token: top, logprob, bytes: [...encoder.encode(top)] })),
    }));
  }
  return null;
}

import { randomBytes } from 'node:crypto';
import type { EngineEvent, FinishReason, TokenLogprob } from '../../engine.js';
import type { OutputReader } from '../output-reader.js';

const CALL_HEAD = '{"name":"';
const ARGUMENTS_HEAD = ',"arguments":';

type Phase = 'open' | 'call' | 'arguments' | 'call-end' | 'separator' | 'done';

/**
 * Reads the generic JSON format as it streams: `[{"name":"f","arguments":{...}},...]`, compact, exactly as its
 * grammar writes it. A call's first delta is sent once its name is complete; its arguments follow in fragments as
 * they are generated. Under `auto` the first character decides: `[` starts calls, anything else is a text answer,
 * passed through as text deltas.
 */
export class GenericJsonCallReader implements OutputReader {
  private mode: 'undecided' | 'text' | 'calls';
  private phase: Phase = 'open';
  private buffer = '';
  private calls = 0;
  /** Inside the arguments value: nesting depth and string state. */
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(callsOnly: boolean) {
    this.mode = callsOnly ? 'calls' : 'undecided';
  }

  push(text: string, logprobs: TokenLogprob[] | null): EngineEvent[] {
    if (this.mode === 'undecided') {
      if (text.length === 0) return [];
      this.mode = text.startsWith('[') ? 'calls' : 'text';
    }
    if (this.mode === 'text') return text.length > 0 || logprobs !== null ? [{ type: 'text-delta', text, logprobs }] : [];
    this.buffer += text;
    return this.drain();
  }

  finish(reason: FinishReason): FinishReason {
    return reason === 'stop' && this.calls > 0 ? 'tool_calls' : reason;
  }

  private drain(): EngineEvent[] {
    const events: EngineEvent[] = [];
    while (this.buffer.length > 0) {
      switch (this.phase) {
        case 'open':
          if (!this.consume('[')) return events;
          this.phase = 'call';
          break;
        case 'call': {
          if (this.buffer.length < CALL_HEAD.length) return events;
          const nameEnd = this.buffer.indexOf('"', CALL_HEAD.length);
          if (nameEnd < 0 || this.buffer.length < nameEnd + 1 + ARGUMENTS_HEAD.length) return events;
          const name = this.buffer.slice(CALL_HEAD.length, nameEnd);
          this.buffer = this.buffer.slice(nameEnd + 1 + ARGUMENTS_HEAD.length);
          events.push({ type: 'tool-call-delta', call: this.calls, id: newCallId(), name, arguments: '' });
          this.calls++;
          this.phase = 'arguments';
          this.depth = 0;
          break;
        }
        case 'arguments': {
          const end = this.scanArguments();
          const fragment = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end);
          if (fragment.length > 0) events.push({ type: 'tool-call-delta', call: this.calls - 1, arguments: fragment });
          if (this.depth === 0) this.phase = 'call-end';
          break;
        }
        case 'call-end':
          if (!this.consume('}')) return events;
          this.phase = 'separator';
          break;
        case 'separator':
          this.phase = this.buffer.startsWith(',') ? 'call' : 'done';
          this.buffer = this.buffer.slice(1);
          break;
        case 'done':
          this.buffer = '';
          break;
      }
    }
    return events;
  }

  /** How much of the buffer belongs to the arguments value: all of it, or up to where the value closes. */
  private scanArguments(): number {
    for (let index = 0; index < this.buffer.length; index++) {
      const char = this.buffer[index];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (char === '\\') this.escaped = true;
        else if (char === '"') this.inString = false;
      } else if (char === '"') {
        this.inString = true;
      } else if (char === '{' || char === '[') {
        this.depth++;
      } else if (char === '}' || char === ']') {
        this.depth--;
        if (this.depth === 0) return index + 1;
      }
    }
    return this.buffer.length;
  }

  private consume(expected: string): boolean {
    if (!this.buffer.startsWith(expected)) {
      // Not the format: the grammar rules this out; drop what cannot be read rather than loop.
      this.buffer = this.buffer.length >= expected.length ? '' : this.buffer;
      return false;
    }
    this.buffer = this.buffer.slice(expected.length);
    return true;
  }
}

/** An id in OpenAI's style: `call_` and 24 random letters and digits. */
function newCallId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let id = 'call_';
  // 248 = 4 * 62: bytes at or above it are skipped, so every character is equally likely.
  while (id.length < 29) for (const byte of randomBytes(32)) if (byte < 248 && id.length < 29) id += alphabet[byte % 62];
  return id;
}

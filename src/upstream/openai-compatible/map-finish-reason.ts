import type { FinishReason } from '../../engine/engine.js';

/** OpenAI's finish reasons (and vLLM's, llama-server's) as the engine names them; anything unknown ends normally. */
export function mapFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

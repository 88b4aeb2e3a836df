import type { UsageTotals } from '../../core/inference/run-choices.js';
import type { UsageWire } from '../../protocol/openai/chat-completions.js';

export function usageToWire(totals: UsageTotals): UsageWire {
  return {
    prompt_tokens: totals.promptTokens,
    completion_tokens: totals.completionTokens,
    total_tokens: totals.promptTokens + totals.completionTokens,
    prompt_tokens_details: { cached_tokens: totals.cachedTokens },
  };
}

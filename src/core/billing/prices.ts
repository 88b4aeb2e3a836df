import type { PricesConfig } from '../../config/schema.js';

/** Micro-USD per one million tokens, as integers (USD per 1M tokens x 1e6). */
export interface ModelPrices {
  inputMicrosPerMillion: number;
  cachedInputMicrosPerMillion: number;
  outputMicrosPerMillion: number;
  /** Prompt tokens written to the prompt cache (Anthropic-style cache writes). */
  cacheWriteMicrosPerMillion: number;
}

export interface TokenCounts {
  /** All prompt tokens, cached ones included. */
  promptTokens: number;
  /** Prompt tokens served from the prompt cache (billed at the cached-input price). */
  cachedTokens: number;
  completionTokens: number;
  /** Prompt tokens written to the prompt cache (billed at the cache-write price); a part of `promptTokens`. Default 0. */
  cacheWriteTokens?: number;
}

const MILLION = 1_000_000n;

/** Converts the catalog's USD-per-1M prices to integer micro-USD per 1M tokens (exact to 1e-6 USD per 1M). */
export function toModelPrices(prices: PricesConfig): ModelPrices {
  const micros = (usd: number) => Math.round(usd * 1_000_000);
  return {
    inputMicrosPerMillion: micros(prices.input),
    cachedInputMicrosPerMillion: micros(prices.cached_input ?? prices.input),
    outputMicrosPerMillion: micros(prices.output),
    cacheWriteMicrosPerMillion: micros(prices.cache_write ?? prices.input),
  };
}

/**
 * The cost of a request in micro-USD: integer arithmetic, rounded once (half up) at the end. `multiplier` is a
 * rational discount as [numerator, denominator] (e.g. [1, 2] for the batch discount); default full price.
 */
export function costMicros(prices: ModelPrices, tokens: TokenCounts, multiplier: readonly [number, number] = [1, 1]): number {
  const cacheWrites = tokens.cacheWriteTokens ?? 0;
  const uncached = BigInt(tokens.promptTokens - tokens.cachedTokens - cacheWrites);
  const exact =
    uncached * BigInt(prices.inputMicrosPerMillion) +
    BigInt(cacheWrites) * BigInt(prices.cacheWriteMicrosPerMillion) +
    BigInt(tokens.cachedTokens) * BigInt(prices.cachedInputMicrosPerMillion) +
    BigInt(tokens.completionTokens) * BigInt(prices.outputMicrosPerMillion);
  const numerator = exact * BigInt(multiplier[0]);
  const denominator = MILLION * BigInt(multiplier[1]);
  return Number((numerator * 2n + denominator) / (denominator * 2n));
}

/**
 * The most a request can cost: every prompt token uncached (or a cache write, when that costs more), every allowed
 * output token generated.
 */
export function worstCaseMicros(prices: ModelPrices, promptTokens: number, maxCompletionTokens: number, multiplier: readonly [number, number] = [1, 1]): number {
  const cacheWriteTokens = prices.cacheWriteMicrosPerMillion > prices.inputMicrosPerMillion ? promptTokens : 0;
  return costMicros(prices, { promptTokens, cachedTokens: 0, completionTokens: maxCompletionTokens, cacheWriteTokens }, multiplier);
}

/** micro-USD -> USD as a number, for display fields such as `balance_usd`. */
export function microsToUsd(micros: number): number {
  return micros / 1_000_000;
}

/** USD from an API call -> micro-USD, rejecting amounts that are not a whole number of micro-USD. */
export function usdToMicros(usd: number): number {
  return Math.round(usd * 1_000_000);
}

/**
 * Merging the rounds of `npm run bench`. The server and the ceiling are measured alternately, round after round,
 * so that the machine's drift (other tenants of the host: ±15-25% over minutes on the 2-vCPU VMs) hits both alike;
 * a level's numbers are then taken over all its rounds: throughput as all tokens over all wall time, latency
 * statistics as the median of the rounds' own (each round's p50, p99...).
 */
import type { CeilingLevel, CeilingResult } from './ceiling.js';
import type { ServerLevel } from './scenarios/unique-prompts.js';
import type { Summary } from './stats.js';

export function mergeServerRounds(rounds: readonly ServerLevel[][]): ServerLevel[] {
  if (rounds.length === 0) return [];
  return rounds[0].map((first) => {
    const levels = rounds.map((round) => round.find((level) => level.concurrency === first.concurrency)!);
    const common = mergeCommon(levels);
    return {
      ...first,
      ...common,
      errors: sum(levels, (level) => level.errors),
      firstError: levels.find((level) => level.firstError !== null)?.firstError ?? null,
      clientCpuMs: sum(levels, (level) => level.clientCpuMs),
      requestsPerSecond: sum(levels, (level) => level.requests - level.errors) / (common.wallMs / 1000),
      promptTokensMean: sum(levels, (level) => level.promptTokensMean) / levels.length,
      serverCpuMs: nullableSum(levels.map((level) => level.serverCpuMs)),
    };
  });
}

export function mergeCeilingRounds(rounds: readonly CeilingResult[]): CeilingResult | null {
  if (rounds.length === 0) return null;
  const levels: CeilingLevel[] = rounds[0].levels.map((first) => {
    const all = rounds.map((round) => round.levels.find((level) => level.concurrency === first.concurrency)!);
    const common = mergeCommon(all);
    return {
      concurrency: first.concurrency,
      ...common,
      cpuMs: sum(all, (level) => level.cpuMs),
      requestsPerSecond: common.requests / (common.wallMs / 1000),
    };
  });
  return { ...rounds[0], levels };
}

/** What server and ceiling levels both measure, over the rounds of one level. */
function mergeCommon(levels: ReadonlyArray<ServerLevel | CeilingLevel>) {
  const wallMs = sum(levels, (level) => level.wallMs);
  const completionTokens = sum(levels, (level) => level.completionTokens);
  return {
    requests: sum(levels, (level) => level.requests),
    wallMs,
    completionTokens,
    outputTokensPerSecond: completionTokens / (wallMs / 1000),
    ttftMs: medianSummary(levels.map((level) => level.ttftMs)),
    interTokenMs: medianSummary(levels.map((level) => level.interTokenMs)),
    otherCpuMs: nullableSum(levels.map((level) => level.otherCpuMs)),
  };
}

function sum<T>(items: readonly T[], pick: (item: T) => number): number {
  return items.reduce((total, item) => total + pick(item), 0);
}

/** Each statistic's median over the rounds (count: the sum). */
export function medianSummary(summaries: readonly Summary[]): Summary {
  const median = (pick: (summary: Summary) => number) => {
    const values = summaries.map(pick).filter(Number.isFinite).sort((a, b) => a - b);
    if (values.length === 0) return Number.NaN;
    const middle = values.length >> 1;
    return values.length % 2 === 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
  };
  return {
    count: summaries.reduce((total, summary) => total + summary.count, 0),
    mean: median((summary) => summary.mean),
    p50: median((summary) => summary.p50),
    p90: median((summary) => summary.p90),
    p99: median((summary) => summary.p99),
    max: Math.max(...summaries.map((summary) => summary.max)),
  };
}

function nullableSum(values: ReadonlyArray<number | null>): number | null {
  return values.some((value) => value === null) ? null : values.reduce<number>((total, value) => total + (value ?? 0), 0);
}

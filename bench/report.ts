import type { BenchModel } from './bench-models.js';
import type { CeilingLevel, CeilingResult } from './ceiling.js';
import type { ServerLevel } from './scenarios/unique-prompts.js';

/** Everything measured for one model. */
export interface ModelReport {
  model: BenchModel;
  /** Mean prompt tokens per server request (chat template included). */
  promptTokens: number;
  server: ServerLevel[];
  /** null with --skip-ceiling or when the ceiling run failed. */
  ceiling: CeilingResult | null;
  /** Each round as measured (server and ceiling merged above). */
  rounds: Array<{ server: ServerLevel[]; ceiling: CeilingResult | null }>;
}

export interface GoalCheck {
  goal: string;
  model: string;
  /** null: not measured (ceiling skipped, or the level not run). */
  passed: boolean | null;
  detail: string;
}

/** Server output must reach this share of the ceiling's at THROUGHPUT_GOAL_CONCURRENCY. */
export const THROUGHPUT_GOAL_RATIO = 0.9;
export const THROUGHPUT_GOAL_CONCURRENCY = 8;
/** Server TTFT p50 at one client may exceed the ceiling's by at most this, ms. */
export const TTFT_GOAL_MS = 2;

/** A markdown table: one row per concurrency level. */
export function formatModelTable(report: ModelReport): string {
  const header = [
    'C', 'server tok/s', 'ceiling tok/s', 'server/ceiling', 'req/s', 'TTFT p50 ms', 'TTFT p99 ms',
    'ceiling TTFT p50 ms', 'ceiling TTFT p99 ms', 'ITL p50 ms', 'ITL p99 ms', 'ceiling ITL p50 ms', 'requests', 'errors',
  ];
  const rows = report.server.map((server) => {
    const ceiling = ceilingLevel(report.ceiling, server.concurrency);
    return [
      String(server.concurrency),
      fixed(server.outputTokensPerSecond, 0),
      ceiling ? fixed(ceiling.outputTokensPerSecond, 0) : '-',
      ceiling ? fixed(server.outputTokensPerSecond / ceiling.outputTokensPerSecond, 2) : '-',
      fixed(server.requestsPerSecond, 2),
      fixed(server.ttftMs.p50, 1),
      fixed(server.ttftMs.p99, 1),
      ceiling ? fixed(ceiling.ttftMs.p50, 1) : '-',
      ceiling ? fixed(ceiling.ttftMs.p99, 1) : '-',
      fixed(server.interTokenMs.p50, 2),
      fixed(server.interTokenMs.p99, 2),
      ceiling ? fixed(ceiling.interTokenMs.p50, 2) : '-',
      String(server.requests),
      String(server.errors),
    ];
  });
  return markdownTable(header, rows);
}

function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  return [header, header.map(() => '---:'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/**
 * Where the CPU goes, per output token: the server process, the load generator (this process), the ceiling process.
 * "cores" is CPU time / wall time: 2.0 means both cores of a 2-core machine were busy. "other cores" is what the rest
 * of the machine used meanwhile: above about 0.2, something else competed and the numbers are suspect.
 */
export function formatCpuTable(report: ModelReport): string {
  const header = [
    'C', 'server CPU ms/tok', 'client CPU ms/tok', 'ceiling CPU ms/tok', 'server cores', 'client cores', 'ceiling cores',
    'other cores (server run)', 'other cores (ceiling run)',
  ];
  const rows = report.server.map((server) => {
    const ceiling = ceilingLevel(report.ceiling, server.concurrency);
    const serverCpu = server.serverCpuMs ?? Number.NaN;
    return [
      String(server.concurrency),
      fixed(serverCpu / server.completionTokens, 3),
      fixed(server.clientCpuMs / server.completionTokens, 3),
      ceiling ? fixed(ceiling.cpuMs / ceiling.completionTokens, 3) : '-',
      fixed(serverCpu / server.wallMs, 2),
      fixed(server.clientCpuMs / server.wallMs, 2),
      ceiling ? fixed(ceiling.cpuMs / ceiling.wallMs, 2) : '-',
      fixed((server.otherCpuMs ?? Number.NaN) / server.wallMs, 2),
      ceiling ? fixed((ceiling.otherCpuMs ?? Number.NaN) / ceiling.wallMs, 2) : '-',
    ];
  });
  return markdownTable(header, rows);
}

/** Cores that other processes may use during a level before the bench warns that its numbers are suspect. */
export const OTHER_CORES_WARNING = 0.2;

/** Levels during which other processes used more than OTHER_CORES_WARNING cores, as "model C=n (server|ceiling)". */
export function contendedLevels(reports: readonly ModelReport[]): string[] {
  return reports.flatMap((report) =>
    report.server.flatMap((server) => {
      const ceiling = ceilingLevel(report.ceiling, server.concurrency);
      const found: string[] = [];
      if ((server.otherCpuMs ?? 0) / server.wallMs > OTHER_CORES_WARNING) found.push(`${report.model.name} C=${server.concurrency} (server)`);
      if (ceiling && (ceiling.otherCpuMs ?? 0) / ceiling.wallMs > OTHER_CORES_WARNING) {
        found.push(`${report.model.name} C=${server.concurrency} (ceiling)`);
      }
      return found;
    }),
  );
}

/** The two goals, per model. A MISS is a measurement, not a failure of the bench. */
export function goalChecks(reports: readonly ModelReport[]): GoalCheck[] {
  return reports.flatMap((report) => [throughputCheck(report), ttftCheck(report)]);
}

export function formatGoalChecks(checks: readonly GoalCheck[]): string {
  return checks
    .map((check) => `${check.passed === null ? 'N/A ' : check.passed ? 'PASS' : 'MISS'}  ${check.model}: ${check.goal} (${check.detail})`)
    .join('\n');
}

function throughputCheck(report: ModelReport): GoalCheck {
  const goal = `server >= ${THROUGHPUT_GOAL_RATIO * 100}% of the ceiling's tok/s at C=${THROUGHPUT_GOAL_CONCURRENCY}`;
  const server = report.server.find((level) => level.concurrency === THROUGHPUT_GOAL_CONCURRENCY);
  const ceiling = ceilingLevel(report.ceiling, THROUGHPUT_GOAL_CONCURRENCY);
  if (!server || !ceiling) return { goal, model: report.model.name, passed: null, detail: 'not measured' };
  const ratio = server.outputTokensPerSecond / ceiling.outputTokensPerSecond;
  return {
    goal,
    model: report.model.name,
    passed: ratio >= THROUGHPUT_GOAL_RATIO && server.errors === 0,
    detail: `${fixed(server.outputTokensPerSecond, 0)} / ${fixed(ceiling.outputTokensPerSecond, 0)} tok/s = ${fixed(ratio * 100, 1)}%` +
      (server.errors > 0 ? `, ${server.errors} errors` : ''),
  };
}

function ttftCheck(report: ModelReport): GoalCheck {
  const goal = `server TTFT p50 within ${TTFT_GOAL_MS} ms of the ceiling's at C=1`;
  const server = report.server.find((level) => level.concurrency === 1);
  const ceiling = ceilingLevel(report.ceiling, 1);
  if (!server || !ceiling) return { goal, model: report.model.name, passed: null, detail: 'not measured' };
  const difference = server.ttftMs.p50 - ceiling.ttftMs.p50;
  return {
    goal,
    model: report.model.name,
    passed: difference <= TTFT_GOAL_MS && server.errors === 0,
    detail: `${fixed(server.ttftMs.p50, 2)} - ${fixed(ceiling.ttftMs.p50, 2)} ms = ${difference >= 0 ? '+' : ''}${fixed(difference, 2)} ms`,
  };
}

/** Each round's goal numbers: server/ceiling tok/s at the throughput goal's C, and the TTFT p50 difference at C=1. */
export function formatRounds(report: ModelReport): string {
  return report.rounds
    .map((round, index) => {
      const server = round.server.find((level) => level.concurrency === THROUGHPUT_GOAL_CONCURRENCY);
      const ceiling = ceilingLevel(round.ceiling, THROUGHPUT_GOAL_CONCURRENCY);
      const one = round.server.find((level) => level.concurrency === 1);
      const ceilingOne = ceilingLevel(round.ceiling, 1);
      const ratio = server && ceiling ? fixed(server.outputTokensPerSecond / ceiling.outputTokensPerSecond, 2) : '-';
      const ttft = one && ceilingOne ? fixed(one.ttftMs.p50 - ceilingOne.ttftMs.p50, 1) : '-';
      return `${index + 1}: C=${THROUGHPUT_GOAL_CONCURRENCY} ${ratio}, TTFT C=1 ${ttft.startsWith('-') ? '' : '+'}${ttft} ms`;
    })
    .join('; ');
}

function ceilingLevel(ceiling: CeilingResult | null, concurrency: number): CeilingLevel | undefined {
  return ceiling?.levels.find((level) => level.concurrency === concurrency);
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc reports CPU time in these ticks per second (100 on every mainstream architecture). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system, all threads) that process `pid` has used so far, ms, at 10 ms resolution;
 * null where /proc is not available. Used to tell where time goes: server vs load generator vs ceiling.
 */
export function processCpuMs(pid: number): number | null {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** CPU time of process `pid`'s main thread alone (Node's event loop), ms, as processCpuMs; null without /proc. */
export function mainThreadCpuMs(pid: number): number | null {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuMs(file: string): number | null {
  try {
    const stat = readFileSync(file, 'utf8');
    // Fields after the command name, which is parenthesized and may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

/** CPU time this process has used so far (user + system, all threads), ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * CPU time the whole machine has spent busy so far (all CPUs: user, nice, system, irq, softirq, steal), ms;
 * null where /proc is not available. Minus the bench's own processes, it tells how much else ran meanwhile.
 */
export function machineBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = user + nice + system + irq + softirq + (steal ?? 0);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

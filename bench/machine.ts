import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  /** CPUs this process may use (what `nproc` prints). */
  cpus: number;
  /** `model name` from /proc/cpuinfo, else Node's report. */
  cpuModel: string;
  node: string;
  /** Total memory, GiB. */
  memoryGiB: number;
}

export function describeMachine(): MachineInfo {
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpuModelName(),
    node: process.version,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

function cpuModelName(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1].trim();
  } catch {
    // Not Linux: fall through.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export function formatMachine(machine: MachineInfo): string {
  return `${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node.js ${machine.node}`;
}

/**
 * Finds stop strings in streamed text. Text that could still be the start of a stop string is held back, so
 * the stop text itself is never emitted. `push` returns what is safe to emit and whether a stop matched (`matched`:
 * which one, the earliest in the text).
 */
export class StopMatcher {
  private held = '';

  constructor(private readonly stops: readonly string[]) {}

  push(text: string): { emit: string; stopped: boolean; matched?: string } {
    if (this.stops.length === 0) return { emit: text, stopped: false };
    const buffer = this.held + text;
    let earliest = -1;
    let matched = '';
    for (const stop of this.stops) {
      const index = buffer.indexOf(stop);
      if (index >= 0 && (earliest < 0 || index < earliest)) {
        earliest = index;
        matched = stop;
      }
    }
    if (earliest >= 0) {
      this.held = '';
      return { emit: buffer.slice(0, earliest), stopped: true, matched };
    }
    const keep = this.longestStopPrefixSuffix(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { emit: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** The held-back text, at the end of generation. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }

  private longestStopPrefixSuffix(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      const max = Math.min(stop.length - 1, buffer.length);
      for (let length = max; length > best; length--) {
        if (buffer.endsWith(stop.slice(0, length))) {
          best = length;
          break;
        }
      }
    }
    return best;
  }
}

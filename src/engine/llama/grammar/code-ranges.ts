import type { CodeRange } from './gbnf-builder.js';

/** Sets of Unicode code points as sorted, merged inclusive ranges, for the regex converter. */

/** Every code point a token can produce: no NUL, no surrogate halves. */
export const UNIVERSE: CodeRange[] = [
  [1, 0xd7ff],
  [0xe000, 0x10ffff],
];
export const DIGITS: CodeRange[] = [[0x30, 0x39]];
export const WORD: CodeRange[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
export const SPACE: CodeRange[] = [
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a],
  [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
];
export const LINE_TERMINATORS: CodeRange[] = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];

export function normalize(ranges: readonly CodeRange[]): CodeRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1] + 1) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

export function subtract(ranges: readonly CodeRange[], remove: readonly CodeRange[]): CodeRange[] {
  let result = normalize(ranges);
  for (const [removeStart, removeEnd] of remove) {
    const next: CodeRange[] = [];
    for (const [start, end] of result) {
      if (removeEnd < start || removeStart > end) {
        next.push([start, end]);
        continue;
      }
      if (start < removeStart) next.push([start, removeStart - 1]);
      if (end > removeEnd) next.push([removeEnd + 1, end]);
    }
    result = next;
  }
  return result;
}

export function intersect(ranges: readonly CodeRange[], other: readonly CodeRange[]): CodeRange[] {
  const result: CodeRange[] = [];
  for (const [start, end] of normalize(ranges)) {
    for (const [otherStart, otherEnd] of other) {
      const from = Math.max(start, otherStart);
      const to = Math.min(end, otherEnd);
      if (from <= to) result.push([from, to]);
    }
  }
  return result;
}

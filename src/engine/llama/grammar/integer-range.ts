/**
 * GBNF for the decimal integers of a range, written as JSON writes them (no leading zeros, `-` for negatives). The
 * range is split into spans of equal digit count, and each span into digit-prefix classes, e.g. [15, 234] ->
 * `"1" [5-9] | [2-9] [0-9] | "1" [0-9]{2} | "2" [0-2] [0-9] | "23" [0-4]`.
 */
export function integerRangeGbnf(low: number, high: number): string {
  if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || low > high) {
    throw new Error(`bad integer range [${low}, ${high}]`);
  }
  const alternatives: string[] = [];
  if (low < 0) {
    const negatives = naturalRange(high < 0 ? -high : 1, -low);
    alternatives.push(`"-" (${negatives.join(' | ')})`);
  }
  if (high >= 0) alternatives.push(...naturalRange(Math.max(low, 0), high));
  return alternatives.join(' | ');
}

/** Alternatives for [low, high], 0 <= low <= high. */
function naturalRange(low: number, high: number): string[] {
  const alternatives: string[] = [];
  const lowDigits = String(low).length;
  const highDigits = String(high).length;
  for (let digits = lowDigits; digits <= highDigits; digits++) {
    const from = digits === lowDigits ? low : 10 ** (digits - 1);
    const to = digits === highDigits ? high : 10 ** digits - 1;
    alternatives.push(...sameLength(String(from), String(to)));
  }
  return alternatives;
}

/** Alternatives for the numbers between two digit strings of the same length. */
function sameLength(low: string, high: string): string[] {
  if (low === high) return [`"${low}"`];
  const rest = low.length - 1;
  if (low[0] === high[0]) return sameLength(low.slice(1), high.slice(1)).map((tail) => `"${low[0]}" ${tail}`);
  const alternatives: string[] = [];
  let first = Number(low[0]);
  let last = Number(high[0]);
  const lowRest = low.slice(1);
  const highRest = high.slice(1);
  let highTail: string[] = [];
  if (lowRest !== '0'.repeat(rest)) {
    alternatives.push(...sameLength(lowRest, '9'.repeat(rest)).map((tail) => `"${low[0]}" ${tail}`));
    first++;
  }
  if (highRest !== '9'.repeat(rest)) {
    highTail = sameLength('0'.repeat(rest), highRest).map((tail) => `"${high[0]}" ${tail}`);
    last--;
  }
  if (first <= last) {
    const head = first === last ? `"${first}"` : `[${first}-${last}]`;
    alternatives.push(rest > 0 ? `${head} [0-9]{${rest}}` : head);
  }
  alternatives.push(...highTail);
  return alternatives;
}

/**
 * GBNF for the JSON numbers in [low, high] (whole-number bounds), with `fraction` the rule of an optional fraction:
 * an integer part in [low, high - 1] may take any fraction, `high` itself none; negatives mirror that.
 */
export function numberRangeGbnf(low: number, high: number, fraction: string): string {
  const alternatives: string[] = [];
  const side = (from: number, to: number): string => {
    const parts = [];
    if (to > from) parts.push(`(${integerRangeGbnf(from, to - 1)}) ${fraction}?`);
    parts.push(`"${to}"`);
    return parts.join(' | ');
  };
  if (low < 0) alternatives.push(`"-" (${side(high < 0 ? -high : 0, -low)})`);
  if (high >= 0) alternatives.push(side(Math.max(low, 0), high));
  return alternatives.join(' | ');
}

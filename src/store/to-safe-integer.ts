/**
 * Database integers at the boundary. pg returns BIGINT (int8) and NUMERIC (what SUM over BIGINT yields) as strings;
 * better-sqlite3 returns numbers. Every such value becomes a JS number here, and only if it is a safe integer:
 * money is exact or it is an error.
 */
export function toSafeInteger(value: string | number | bigint | null | undefined): number {
  if (value === null || value === undefined) throw new Error('expected an integer from the database, got null');
  const number = typeof value === 'string' ? (value.trim() === '' ? Number.NaN : Number(value)) : Number(value);
  if (!Number.isSafeInteger(number) || (typeof value === 'bigint' && BigInt(number) !== value)) {
    throw new Error(`database integer ${String(value)} is not a safe JS integer`);
  }
  return number;
}

/** As `toSafeInteger`, but null stays null (nullable columns, SUM over no rows). */
export function toSafeIntegerOrNull(value: string | number | bigint | null | undefined): number | null {
  return value === null || value === undefined ? null : toSafeInteger(value);
}

/** Refuses money or counts that are not safe integers (or are negative, unless `allowNegative`) before they reach SQL. */
export function assertSafeInteger(value: number, name: string, allowNegative = false): void {
  if (!Number.isSafeInteger(value) || (!allowNegative && value < 0)) {
    throw new Error(`${name} must be a ${allowNegative ? '' : 'non-negative '}safe integer, got ${value}`);
  }
}

import type { GbnfBuilder } from './gbnf-builder.js';

/**
 * Grammars of the string formats that can be enforced, each the inside of a JSON string. Each accepts a subset of
 * what the format allows (as Ajv's ajv-formats checks it in full mode), chosen so every output is valid and short:
 * - date: YYYY-MM-DD with a day that exists in that month (29 February is left out: it needs a leap year);
 * - time: hh:mm:ss, optional milliseconds, and a time zone (`Z` or ±hh:mm);
 * - date-time: date `T` time;
 * - email: local part of letters, digits, `_+-` (dot-separated) @ 1..3 labels of letters and digits, each followed
 *   by a dot, and a top-level domain of 2..10 letters;
 * - uuid: 8-4-4-4-12 lowercase hexadecimal digits.
 */
export const SUPPORTED_FORMATS = ['date', 'time', 'date-time', 'email', 'uuid'] as const;

export type SupportedFormat = (typeof SUPPORTED_FORMATS)[number];

export function isSupportedFormat(format: string): format is SupportedFormat {
  return (SUPPORTED_FORMATS as readonly string[]).includes(format);
}

/** The rule name of the format's string contents (without the quotes). */
export function formatRule(builder: GbnfBuilder, format: SupportedFormat): string {
  switch (format) {
    case 'date':
      return date(builder);
    case 'time':
      return time(builder);
    case 'date-time': {
      const datePart = date(builder);
      const timePart = time(builder);
      return builder.shared('format-date-time', () => `${datePart} "T" ${timePart}`);
    }
    case 'email': {
      const atom = '[a-zA-Z0-9_+-]{1,32}';
      const label = '[a-zA-Z0-9]{1,20}';
      return builder.shared('format-email', () => `${atom} ("." ${atom}){0,2} "@" (${label} ".") {1,3} [a-zA-Z]{2,10}`);
    }
    case 'uuid':
      return builder.shared('format-uuid', () => '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}');
  }
}

function date(builder: GbnfBuilder): string {
  return builder.shared('format-date', () => {
    const day28 = '("0" [1-9] | "1" [0-9] | "2" [0-8])';
    const day30 = `(${day28} | "29" | "30")`;
    const day31 = `(${day30} | "31")`;
    return `[0-9]{4} "-" (("0" [13578] | "1" [02]) "-" ${day31} | ("0" [469] | "11") "-" ${day30} | "02-" ${day28})`;
  });
}

function time(builder: GbnfBuilder): string {
  return builder.shared('format-time', () => {
    const hour = '([01] [0-9] | "2" [0-3])';
    const minute = '[0-5] [0-9]';
    return `${hour} ":" ${minute} ":" ${minute} ("." [0-9]{1,3})? ("Z" | [+-] ${hour} ":" ${minute})`;
  });
}

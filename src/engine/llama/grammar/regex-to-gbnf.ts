import { invalidRegex } from './constraint-errors.js';
import { DIGITS, intersect, LINE_TERMINATORS, normalize, SPACE, subtract, UNIVERSE, WORD } from './code-ranges.js';
import { gbnfCharClass, gbnfLiteral, type CodeRange, type GbnfBuilder } from './gbnf-builder.js';
import { jsonChar } from './json-primitives.js';

/**
 * Turns an ECMAScript regular expression into GBNF (regular languages are a subset of what GBNF describes).
 * Supported: literals and escapes, `.`, classes (`[a-z]`, `[^"]`, `\d \w \s \D \W \S`), groups (capturing,
 * `(?:)`, named), `|`, and the quantifiers `* + ? {m} {m,} {m,n}` (lazy ones too), with counts up to 1000; `^`
 * and `$` only at the start and end. Refused: lookaround, backreferences, word boundaries, `\p{...}`.
 *
 * Targets: `text` (the whole output matches, as vLLM's guided_regex), or `json-string` (JSON Schema's `pattern`: the
 * inside of a JSON string, which the pattern must match somewhere, so an unanchored side may be followed or preceded
 * by any text). Inside a JSON string a character the pattern names explicitly that JSON must escape (`"`, `\`,
 * control characters) is written escaped; sets that merely include them (`.`, `[^a]`, `\S`) never produce them.
 */
export type RegexTarget = 'text' | 'json-string';

/** Largest repetition count accepted (llama.cpp expands counted repetitions into rules). */
const MAX_REPEAT = 1000;
/** Characters JSON strings must escape. */
const JSON_SPECIAL: CodeRange[] = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];
const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

type RegexNode =
  | { kind: 'alternation'; options: RegexNode[] }
  | { kind: 'sequence'; items: RegexNode[] }
  /** `broad`: a set written by exclusion (`.`, `[^...]`, `\D`), which never produces JSON-escaped characters. */
  | { kind: 'set'; ranges: CodeRange[]; broad: boolean }
  | { kind: 'repeat'; node: RegexNode; min: number; max: number }
  | { kind: 'anchor'; which: 'start' | 'end' };

/** Adds the rules of the pattern and returns the name of its rule. Throws a 400 error naming `param`. */
export function regexToGbnf(builder: GbnfBuilder, pattern: string, target: RegexTarget, param: string): string {
  const tree = new RegexParser(pattern, param).parse();
  const emitter = new RegexEmitter(builder, target, param);
  const options = tree.kind === 'alternation' ? tree.options : [tree];
  const alternatives = options.map((option) => {
    const items = option.kind === 'sequence' ? [...option.items] : [option];
    const anchoredStart = items[0]?.kind === 'anchor' && items[0].which === 'start';
    if (anchoredStart) items.shift();
    const anchoredEnd = items.at(-1)?.kind === 'anchor' && (items.at(-1) as { which: string }).which === 'end';
    if (anchoredEnd) items.pop();
    let body = emitter.sequence(items);
    if (target === 'json-string') {
      if (!anchoredStart) body = `${jsonChar(builder)}* ${body}`;
      if (!anchoredEnd) body = `${body} ${jsonChar(builder)}*`;
    }
    return body;
  });
  return builder.add('pattern', alternatives.join(' | '));
}

class RegexParser {
  private position = 0;

  constructor(
    private readonly pattern: string,
    private readonly param: string,
  ) {}

  parse(): RegexNode {
    const node = this.alternation();
    if (this.position < this.pattern.length) this.fail(`has an unmatched ')' at position ${this.position}.`);
    return node;
  }

  private alternation(): RegexNode {
    const options = [this.sequence()];
    while (this.peek() === '|') {
      this.position++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { kind: 'alternation', options };
  }

  private sequence(): RegexNode {
    const items: RegexNode[] = [];
    while (this.position < this.pattern.length && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return { kind: 'sequence', items };
  }

  private quantified(atom: RegexNode): RegexNode {
    const bounds = this.quantifier();
    if (bounds === null) return atom;
    if (atom.kind === 'anchor') this.fail('repeats an anchor.');
    if (this.peek() === '?') this.position++;
    if (bounds.max !== Infinity && bounds.max < bounds.min) this.fail(`has a quantifier {${bounds.min},${bounds.max}} out of order.`);
    if (bounds.min > MAX_REPEAT || (bounds.max !== Infinity && bounds.max > MAX_REPEAT)) {
      this.unsupported(`repeats more than ${MAX_REPEAT} times, which constrained decoding cannot enforce.`);
    }
    if (this.quantifierAhead()) this.fail(`has a quantifier that repeats nothing at position ${this.position}.`);
    return { kind: 'repeat', node: atom, ...bounds };
  }

  private quantifierAhead(): boolean {
    const saved = this.position;
    const found = this.quantifier() !== null;
    this.position = saved;
    return found;
  }

  private quantifier(): { min: number; max: number } | null {
    const char = this.peek();
    if (char === '*' || char === '+' || char === '?') {
      this.position++;
      return { min: char === '+' ? 1 : 0, max: char === '?' ? 1 : Infinity };
    }
    if (char !== '{') return null;
    const match = /^\{(\d+)(,(\d*))?\}/.exec(this.pattern.slice(this.position));
    if (!match) return null;
    this.position += match[0].length;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3]);
    return { min, max };
  }

  private atom(): RegexNode {
    const char = this.peek();
    if (this.quantifierAhead()) this.fail(`has a quantifier that repeats nothing at position ${this.position}.`);
    switch (char) {
      case '(':
        return this.group();
      case '[':
        return this.characterClass();
      case '.':
        this.position++;
        return { kind: 'set', ranges: subtract(UNIVERSE, LINE_TERMINATORS), broad: true };
      case '^':
        this.position++;
        return { kind: 'anchor', which: 'start' };
      case '$':
        this.position++;
        return { kind: 'anchor', which: 'end' };
      case '\\':
        return this.escape(false);
      default: {
        const code = this.pattern.codePointAt(this.position)!;
        this.position += code > 0xffff ? 2 : 1;
        return single(code);
      }
    }
  }

  private group(): RegexNode {
    this.position++;
    if (this.peek() === '?') {
      const next = this.pattern.slice(this.position, this.position + 3);
      if (next.startsWith('?:')) this.position += 2;
      else if (next.startsWith('?=') || next.startsWith('?!') || next === '?<=' || next === '?<!') {
        this.unsupported('uses a lookaround assertion, which constrained decoding cannot enforce.');
      } else if (next.startsWith('?<')) {
        const end = this.pattern.indexOf('>', this.position);
        if (end < 0) this.fail('has an unterminated group name.');
        this.position = end + 1;
      } else {
        this.fail(`has an invalid group at position ${this.position - 1}.`);
      }
    }
    const inner = this.alternation();
    if (this.peek() !== ')') this.fail('has an unterminated group.');
    this.position++;
    return inner;
  }

  private characterClass(): RegexNode {
    this.position++;
    let negated = false;
    if (this.peek() === '^') {
      negated = true;
      this.position++;
    }
    let ranges: CodeRange[] = [];
    while (this.peek() !== ']') {
      if (this.position >= this.pattern.length) this.fail('has an unterminated character class.');
      const start = this.classAtom();
      if (this.peek() === '-' && this.pattern[this.position + 1] !== ']' && this.position + 1 < this.pattern.length) {
        this.position++;
        const end = this.classAtom();
        if (start.kind !== 'set' || end.kind !== 'set' || !isSingle(start) || !isSingle(end)) {
          this.fail('has a class range whose end is a character set.');
        }
        const from = (start as { ranges: CodeRange[] }).ranges[0][0];
        const to = (end as { ranges: CodeRange[] }).ranges[0][0];
        if (from > to) this.fail(`has a class range out of order.`);
        ranges.push([from, to]);
      } else {
        ranges.push(...(start as { ranges: CodeRange[] }).ranges);
      }
    }
    this.position++;
    ranges = normalize(ranges);
    return negated ? { kind: 'set', ranges: subtract(UNIVERSE, ranges), broad: true } : { kind: 'set', ranges, broad: false };
  }

  private classAtom(): RegexNode {
    if (this.peek() === '\\') return this.escape(true);
    const code = this.pattern.codePointAt(this.position)!;
    this.position += code > 0xffff ? 2 : 1;
    return single(code);
  }

  private escape(inClass: boolean): RegexNode {
    this.position++;
    const char = this.peek();
    if (char === '') this.fail('ends with a lone backslash.');
    this.position++;
    switch (char) {
      case 'd':
        return { kind: 'set', ranges: DIGITS, broad: false };
      case 'w':
        return { kind: 'set', ranges: WORD, broad: false };
      case 's':
        return { kind: 'set', ranges: SPACE, broad: false };
      case 'D':
        return { kind: 'set', ranges: subtract(UNIVERSE, DIGITS), broad: true };
      case 'W':
        return { kind: 'set', ranges: subtract(UNIVERSE, WORD), broad: true };
      case 'S':
        return { kind: 'set', ranges: subtract(UNIVERSE, SPACE), broad: true };
      case 't':
        return single(0x09);
      case 'n':
        return single(0x0a);
      case 'r':
        return single(0x0d);
      case 'f':
        return single(0x0c);
      case 'v':
        return single(0x0b);
      case 'b':
        if (inClass) return single(0x08);
        return this.unsupported('uses a word boundary (\\b), which constrained decoding cannot enforce.');
      case 'B':
        return this.unsupported('uses \\B, which constrained decoding cannot enforce.');
      case 'x':
        return single(this.hexDigits(2));
      case 'u':
        if (this.peek() === '{') {
          const end = this.pattern.indexOf('}', this.position);
          const value = this.pattern.slice(this.position + 1, end);
          if (end < 0 || !/^[0-9a-fA-F]{1,6}$/.test(value)) this.fail('has a bad \\u{...} escape.');
          this.position = end + 1;
          return single(parseInt(value, 16));
        }
        return single(this.hexDigits(4));
      case 'c': {
        const letter = this.peek();
        if (!/^[a-zA-Z]$/.test(letter)) this.fail('has a bad \\c escape.');
        this.position++;
        return single(letter.charCodeAt(0) % 32);
      }
      case 'k':
        return this.unsupported('uses a backreference, which constrained decoding cannot enforce.');
      case 'p':
      case 'P':
        return this.unsupported('uses a Unicode property escape, which is not supported.');
      default:
        if (/[0-9]/.test(char)) {
          return this.unsupported(`uses \\${char} (a backreference or NUL), which constrained decoding cannot enforce.`);
        }
        return single(char.codePointAt(0)!);
    }
  }

  private hexDigits(count: number): number {
    const digits = this.pattern.slice(this.position, this.position + count);
    if (!new RegExp(`^[0-9a-fA-F]{${count}}$`).test(digits)) this.fail(`has a bad hexadecimal escape at position ${this.position}.`);
    this.position += count;
    return parseInt(digits, 16);
  }

  private peek(): string {
    return this.pattern[this.position] ?? '';
  }

  private fail(reason: string): never {
    throw invalidRegex(this.param, `is invalid: it ${reason}`);
  }

  private unsupported(reason: string): never {
    throw invalidRegex(this.param, `is not supported: it ${reason}`, 'unsupported_regex');
  }
}

class RegexEmitter {
  constructor(
    private readonly builder: GbnfBuilder,
    private readonly target: RegexTarget,
    private readonly param: string,
  ) {}

  sequence(items: readonly RegexNode[]): string {
    const parts: string[] = [];
    let literal = '';
    for (const item of items) {
      const char = this.plainChar(item);
      if (char !== null) {
        literal += char;
        continue;
      }
      if (literal.length > 0) parts.push(gbnfLiteral(this.escapeText(literal)));
      literal = '';
      parts.push(this.node(item));
    }
    if (literal.length > 0) parts.push(gbnfLiteral(this.escapeText(literal)));
    return parts.length === 0 ? '""' : parts.join(' ');
  }

  private node(node: RegexNode): string {
    switch (node.kind) {
      case 'sequence':
        return node.items.length === 1 ? this.node(node.items[0]) : `(${this.sequence(node.items)})`;
      case 'alternation':
        return `(${node.options.map((option) => this.node(option)).join(' | ')})`;
      case 'set':
        return this.set(node.ranges, node.broad);
      case 'anchor':
        throw invalidRegex(this.param, 'is not supported: ^ and $ may appear only at the start and end of the pattern.', 'unsupported_regex');
      case 'repeat': {
        const inner = this.builder.add('pattern-part', this.node(node.node));
        if (node.max === Infinity) return node.min === 0 ? `${inner}*` : node.min === 1 ? `${inner}+` : `${inner}{${node.min},}`;
        if (node.min === 0 && node.max === 1) return `${inner}?`;
        return node.min === node.max ? `${inner}{${node.min}}` : `${inner}{${node.min},${node.max}}`;
      }
    }
  }

  /** The character of a one-character set that needs no JSON escaping, else null. */
  private plainChar(node: RegexNode): string | null {
    if (node.kind !== 'set' || !isSingle(node)) return null;
    const code = node.ranges[0][0];
    return code === 0 ? null : String.fromCodePoint(code);
  }

  private escapeText(text: string): string {
    if (this.target === 'text') return text;
    let out = '';
    for (const char of text) out += jsonEscape(char.codePointAt(0)!);
    return out;
  }

  private set(ranges: readonly CodeRange[], broad: boolean): string {
    const alternatives: string[] = [];
    if (this.target === 'text') {
      // No token produces NUL.
      const producible = subtract(ranges, [[0, 0]]);
      if (producible.length > 0) alternatives.push(gbnfCharClass(producible));
    } else {
      const plain = subtract(ranges, JSON_SPECIAL);
      if (plain.length > 0) alternatives.push(gbnfCharClass(plain));
      if (!broad) {
        for (const [start, end] of intersect(ranges, JSON_SPECIAL)) {
          for (let code = start; code <= end; code++) alternatives.push(gbnfLiteral(jsonEscape(code)));
        }
      }
    }
    if (alternatives.length === 0) {
      throw invalidRegex(this.param, 'is not supported: it has a character set that matches no character that can be generated here.', 'unsupported_regex');
    }
    return alternatives.length === 1 ? alternatives[0] : `(${alternatives.join(' | ')})`;
  }
}

/** How a character is written inside a JSON string. */
function jsonEscape(code: number): string {
  if (SHORT_ESCAPES[code] !== undefined) return SHORT_ESCAPES[code];
  if (code < 0x20) return `\\u${code.toString(16).padStart(4, '0')}`;
  return String.fromCodePoint(code);
}

function single(code: number): RegexNode {
  return { kind: 'set', ranges: [[code, code]], broad: false };
}

function isSingle(node: RegexNode): boolean {
  return node.kind === 'set' && !node.broad && node.ranges.length === 1 && node.ranges[0][0] === node.ranges[0][1];
}

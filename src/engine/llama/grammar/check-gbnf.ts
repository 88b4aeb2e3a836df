/**
 * Checks a GBNF grammar as llama.cpp's parser (src/llama-grammar.cpp) would, to tell a client what is wrong with
 * it: llama.cpp itself only prints its message to stderr and reports "failed to parse". The syntax follows
 * llama.cpp's: `name ::= alternatives` rules, one per line (newlines are allowed inside parentheses and after `|`),
 * `"literals"`, `[character classes]`, `.`, `( groups )`, `* + ? {m} {m,} {m,n}`, `<token>` and `#` comments.
 * Beyond syntax it finds undefined rules, a missing root rule and left recursion, which llama.cpp refuses.
 */

/** No token produces NUL: a grammar that requires it can never continue (and node-llama-cpp fails outside the request). */
const NUL_MESSAGE = 'this matches only NUL (\\x00), which no token can produce';
const MAX_CODE_POINT = 0x10ffff;

/** llama.cpp refuses repetition counts above this. */
const MAX_REPETITIONS = 2000;

type Element =
  | { kind: 'terminal' }
  | { kind: 'empty' }
  | { kind: 'ref'; name: string; at: number }
  | { kind: 'group'; alternatives: Element[][] }
  | { kind: 'repeat'; element: Element; min: number };

class GrammarSyntaxError extends Error {}

/** Returns null when llama.cpp will accept the grammar, else a message that says where and what is wrong. */
export function checkGbnf(text: string, root = 'root'): string | null {
  let rules: Map<string, Element[][]>;
  try {
    rules = new GbnfReader(text).read();
  } catch (error) {
    if (error instanceof GrammarSyntaxError) return error.message;
    throw error;
  }
  for (const [name, alternatives] of rules) {
    const missing = findUndefined(alternatives, rules);
    if (missing) {
      const line = text.slice(0, missing.at).split('\n').length;
      return `Undefined rule identifier '${missing.name}' (used in rule '${name}', line ${line}).`;
    }
  }
  if (!rules.has(root)) return `The grammar has no '${root}' rule.`;
  const recursive = findLeftRecursion(rules);
  if (recursive) return `Left recursion in rule '${recursive}': llama.cpp does not support left-recursive grammars.`;
  return null;
}

class GbnfReader {
  private position = 0;
  private readonly rules = new Map<string, Element[][]>();

  constructor(private readonly text: string) {}

  read(): Map<string, Element[][]> {
    this.skipSpace(true);
    while (this.position < this.text.length) this.readRule();
    return this.rules;
  }

  private readRule(): void {
    const name = this.readName();
    this.skipSpace(false);
    if (!this.text.startsWith('::=', this.position)) this.fail("expecting '::='");
    this.position += 3;
    this.skipSpace(true);
    const alternatives = this.readAlternatives(false);
    const existing = this.rules.get(name);
    this.rules.set(name, existing ? [...existing, ...alternatives] : alternatives);
    const char = this.peek();
    if (char === '\r') this.position += this.text[this.position + 1] === '\n' ? 2 : 1;
    else if (char === '\n') this.position++;
    else if (char !== '') this.fail('expecting newline or end');
    this.skipSpace(true);
  }

  private readAlternatives(nested: boolean): Element[][] {
    const alternatives = [this.readSequence(nested)];
    while (this.peek() === '|') {
      this.position++;
      this.skipSpace(true);
      alternatives.push(this.readSequence(nested));
    }
    return alternatives;
  }

  private readSequence(nested: boolean): Element[] {
    const sequence: Element[] = [];
    while (this.position < this.text.length) {
      const char = this.peek();
      const at = this.position;
      if (char === '"') {
        this.position++;
        let empty = true;
        while (this.peek() !== '"') {
          if (this.peek() === '') this.fail('unexpected end of input in a string literal');
          if (this.readChar() === 0) this.failAt(at, NUL_MESSAGE);
          empty = false;
        }
        this.position++;
        sequence.push(empty ? { kind: 'empty' } : { kind: 'terminal' });
      } else if (char === '[') {
        this.position++;
        const negated = this.peek() === '^';
        if (negated) this.position++;
        const ranges: Array<[number, number]> = [];
        while (this.peek() !== ']') {
          if (this.peek() === '') this.fail('unexpected end of input in a character class');
          const start = this.readChar();
          let end = start;
          if (this.peek() === '-' && this.text[this.position + 1] !== ']') {
            this.position++;
            if (this.peek() === '') this.fail('unexpected end of input in a character class');
            end = this.readChar();
          }
          ranges.push([start, end]);
        }
        this.position++;
        // A class must match some character other than NUL: a negated one must leave one out of its ranges.
        const onlyNul = negated ? coversAllButNul(ranges) : ranges.every(([, end]) => end === 0);
        if (onlyNul) this.failAt(at, NUL_MESSAGE);
        sequence.push({ kind: 'terminal' });
      } else if (char === '<' || char === '!') {
        if (char === '!') this.position++;
        if (this.peek() !== '<') this.fail("expecting '<'");
        const end = this.text.indexOf('>', this.position);
        if (end < 0) this.fail("expecting '>'");
        this.position = end + 1;
        sequence.push({ kind: 'terminal' });
      } else if (isWordChar(char)) {
        sequence.push({ kind: 'ref', name: this.readName(), at });
      } else if (char === '(') {
        this.position++;
        this.skipSpace(true);
        const alternatives = this.readAlternatives(true);
        if (this.peek() !== ')') this.fail("expecting ')'");
        this.position++;
        sequence.push({ kind: 'group', alternatives });
      } else if (char === '.') {
        this.position++;
        sequence.push({ kind: 'terminal' });
      } else if (char === '*' || char === '+' || char === '?' || char === '{') {
        this.position++;
        const min = char === '{' ? this.readRepetitionBounds(nested) : char === '+' ? 1 : 0;
        const last = sequence.pop();
        if (!last) this.fail(`expecting an item before '${char}'`);
        sequence.push({ kind: 'repeat', element: last!, min });
      } else {
        break;
      }
      this.skipSpace(nested);
    }
    return sequence;
  }

  /** Reads `m}`, `m,}` or `m,n}` after `{`; returns m. */
  private readRepetitionBounds(nested: boolean): number {
    this.skipSpace(nested);
    const min = this.readInteger();
    this.skipSpace(nested);
    if (this.peek() === '}') {
      this.position++;
    } else if (this.peek() === ',') {
      this.position++;
      this.skipSpace(nested);
      if (/[0-9]/.test(this.peek())) {
        const max = this.readInteger();
        if (max < min) this.fail(`the repetition maximum ${max} is below its minimum ${min}`);
        this.skipSpace(nested);
      }
      if (this.peek() !== '}') this.fail("expecting '}'");
      this.position++;
    } else {
      this.fail("expecting ',' or '}'");
    }
    if (min > MAX_REPETITIONS) this.fail(`a repetition minimum above ${MAX_REPETITIONS}`);
    return min;
  }

  private readInteger(): number {
    const match = /^[0-9]+/.exec(this.text.slice(this.position, this.position + 12));
    if (!match) this.fail('expecting an integer');
    this.position += match![0].length;
    return Number(match![0]);
  }

  private readName(): string {
    const start = this.position;
    while (isWordChar(this.peek())) this.position++;
    if (this.position === start) this.fail('expecting a rule name');
    return this.text.slice(start, this.position);
  }

  /** Reads one character of a literal or class and returns its code point. */
  private readChar(): number {
    if (this.peek() !== '\\') {
      const code = this.text.codePointAt(this.position)!;
      this.position += code > 0xffff ? 2 : 1;
      return code;
    }
    const escape = this.text[this.position + 1] ?? '';
    const hexDigits = { x: 2, u: 4, U: 8 }[escape];
    if (hexDigits !== undefined) {
      const digits = this.text.slice(this.position + 2, this.position + 2 + hexDigits);
      if (!new RegExp(`^[0-9a-fA-F]{${hexDigits}}$`).test(digits)) this.fail(`expecting ${hexDigits} hex digits`);
      this.position += 2 + hexDigits;
      return parseInt(digits, 16);
    }
    const simple: Record<string, number> = { t: 9, r: 13, n: 10, '\\': 92, '"': 34, '[': 91, ']': 93, '-': 45 };
    if (simple[escape] === undefined) this.fail(`unknown escape '\\${escape}'`);
    this.position += 2;
    return simple[escape];
  }

  private skipSpace(newlines: boolean): void {
    while (this.position < this.text.length) {
      const char = this.text[this.position];
      if (char === '#') {
        while (this.position < this.text.length && this.text[this.position] !== '\n' && this.text[this.position] !== '\r') {
          this.position++;
        }
      } else if (char === ' ' || char === '\t' || (newlines && (char === '\n' || char === '\r'))) {
        this.position++;
      } else {
        break;
      }
    }
  }

  private peek(): string {
    return this.text[this.position] ?? '';
  }

  private failAt(position: number, what: string): never {
    this.position = position;
    this.fail(what);
  }

  private fail(what: string): never {
    const before = this.text.slice(0, this.position);
    const line = before.split('\n').length;
    const column = this.position - before.lastIndexOf('\n');
    const near = this.text.slice(this.position, this.position + 20).split('\n')[0];
    throw new GrammarSyntaxError(`Grammar parse error at line ${line}, column ${column}: ${what}${near ? ` (at '${near}')` : ''}.`);
  }
}

function coversAllButNul(ranges: Array<[number, number]>): boolean {
  let next = 1;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start > next) return false;
    next = Math.max(next, end + 1);
  }
  return next > MAX_CODE_POINT;
}

function isWordChar(char: string): boolean {
  return /^[a-zA-Z0-9-]$/.test(char);
}

function findUndefined(alternatives: Element[][], rules: Map<string, Element[][]>): { name: string; at: number } | null {
  for (const sequence of alternatives) {
    for (const element of sequence) {
      const missing = undefinedIn(element, rules);
      if (missing) return missing;
    }
  }
  return null;
}

function undefinedIn(element: Element, rules: Map<string, Element[][]>): { name: string; at: number } | null {
  switch (element.kind) {
    case 'ref':
      return rules.has(element.name) ? null : { name: element.name, at: element.at };
    case 'group':
      return findUndefined(element.alternatives, rules);
    case 'repeat':
      return undefinedIn(element.element, rules);
    default:
      return null;
  }
}

/** A rule that can reach itself before consuming a character; null when there is none. */
function findLeftRecursion(rules: Map<string, Element[][]>): string | null {
  const nullable = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, alternatives] of rules) {
      if (!nullable.has(name) && alternatives.some((sequence) => sequenceNullable(sequence, nullable))) {
        nullable.add(name);
        changed = true;
      }
    }
  }
  const leftRefs = new Map<string, Set<string>>();
  for (const [name, alternatives] of rules) {
    const refs = new Set<string>();
    for (const sequence of alternatives) collectLeftRefs(sequence, nullable, refs);
    leftRefs.set(name, refs);
  }
  const state = new Map<string, 'active' | 'done'>();
  const visit = (name: string): string | null => {
    const current = state.get(name);
    if (current === 'active') return name;
    if (current === 'done') return null;
    state.set(name, 'active');
    for (const next of leftRefs.get(name) ?? []) {
      const found = visit(next);
      if (found) return found;
    }
    state.set(name, 'done');
    return null;
  };
  for (const name of rules.keys()) {
    const found = visit(name);
    if (found) return found;
  }
  return null;
}

function elementNullable(element: Element, nullable: Set<string>): boolean {
  switch (element.kind) {
    case 'terminal':
      return false;
    case 'empty':
      return true;
    case 'ref':
      return nullable.has(element.name);
    case 'group':
      return element.alternatives.some((sequence) => sequenceNullable(sequence, nullable));
    case 'repeat':
      return element.min === 0 || elementNullable(element.element, nullable);
  }
}

function sequenceNullable(sequence: Element[], nullable: Set<string>): boolean {
  return sequence.every((element) => elementNullable(element, nullable));
}

/** Adds the rules a sequence may start with (those after a prefix that can be empty). */
function collectLeftRefs(sequence: Element[], nullable: Set<string>, refs: Set<string>): void {
  for (const element of sequence) {
    collectElementLeftRefs(element, nullable, refs);
    if (!elementNullable(element, nullable)) return;
  }
}

function collectElementLeftRefs(element: Element, nullable: Set<string>, refs: Set<string>): void {
  switch (element.kind) {
    case 'ref':
      refs.add(element.name);
      break;
    case 'group':
      for (const sequence of element.alternatives) collectLeftRefs(sequence, nullable, refs);
      break;
    case 'repeat':
      collectElementLeftRefs(element.element, nullable, refs);
      break;
    default:
      break;
  }
}

/**
 * Collects the rules of one GBNF grammar (llama.cpp's grammar format). Rule names are unique and valid (letters,
 * digits and dashes); rules with identical bodies are shared, so a converter may add freely.
 */
export class GbnfBuilder {
  private readonly rules = new Map<string, string | null>();
  private readonly byBody = new Map<string, string>();

  /** Reserves a unique rule name for a rule defined later (recursive definitions refer to it before it exists). */
  reserve(hint: string): string {
    const base = sanitize(hint);
    let name = base;
    for (let suffix = 2; this.rules.has(name) || name === 'root'; suffix++) name = `${base}-${suffix}`;
    this.rules.set(name, null);
    return name;
  }

  define(name: string, body: string): void {
    this.rules.set(name, body);
  }

  /** Adds a rule, or finds the one with the same body; returns its name. A bare rule name is returned as is. */
  add(hint: string, body: string): string {
    if (/^[a-zA-Z0-9-]+$/.test(body) && this.rules.has(body)) return body;
    const existing = this.byBody.get(body);
    if (existing !== undefined) return existing;
    const name = this.reserve(hint);
    this.define(name, body);
    this.byBody.set(body, name);
    return name;
  }

  /** A rule with a fixed name, defined once however often it is asked for. */
  shared(name: string, body: () => string): string {
    if (!this.rules.has(name)) {
      this.rules.set(name, null);
      this.rules.set(name, body());
    }
    return name;
  }

  /** The grammar text: `root ::= <root>` first, then every rule. */
  build(root: string): string {
    const lines = [`root ::= ${root}`];
    for (const [name, body] of this.rules) {
      if (body === null) throw new Error(`GBNF rule ${name} was reserved but never defined`);
      lines.push(`${name} ::= ${body}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function sanitize(hint: string): string {
  const name = hint.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return name.length > 0 ? name : 'r';
}

/** A GBNF string literal that matches `text` exactly. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"') out += '\\"';
    else if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${hex(code, 2)}`;
    else out += char;
  }
  return `${out}"`;
}

/** An inclusive range of Unicode code points. */
export type CodeRange = readonly [number, number];

/** A GBNF character class of the ranges (which must not be empty). */
export function gbnfCharClass(ranges: readonly CodeRange[], negated = false): string {
  let out = negated ? '[^' : '[';
  for (const [start, end] of ranges) {
    out += classChar(start);
    if (end > start) out += `-${classChar(end)}`;
  }
  return `${out}]`;
}

function classChar(code: number): string {
  if (code >= 0x20 && code < 0x7f && !'[]\\-^"'.includes(String.fromCharCode(code))) return String.fromCharCode(code);
  if (code <= 0xff) return `\\x${hex(code, 2)}`;
  if (code <= 0xffff) return `\\u${hex(code, 4)}`;
  return `\\U${hex(code, 8)}`;
}

function hex(code: number, digits: number): string {
  return code.toString(16).toUpperCase().padStart(digits, '0');
}

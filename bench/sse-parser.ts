/**
 * An incremental Server-Sent Events parser: feed it decoded text as it arrives, get back the `data` of every event
 * completed so far. Comment lines (`: ping`) and fields other than `data` (`event`, `id`, `retry`) are skipped;
 * multi-line data is joined with "\n" as the SSE spec says.
 */
export class SseParser {
  private buffer = '';
  private dataLines: string[] = [];

  /** Returns the data payloads of the events that this text completed, in order. */
  push(text: string): string[] {
    this.buffer += text;
    const payloads: string[] = [];
    let start = 0;
    let newline = this.buffer.indexOf('\n', start);
    while (newline !== -1) {
      const end = newline > start && this.buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.line(this.buffer.slice(start, end), payloads);
      start = newline + 1;
      newline = this.buffer.indexOf('\n', start);
    }
    this.buffer = this.buffer.slice(start);
    return payloads;
  }

  private line(line: string, payloads: string[]): void {
    if (line.length === 0) {
      if (this.dataLines.length > 0) payloads.push(this.dataLines.join('\n'));
      this.dataLines = [];
      return;
    }
    if (line.startsWith(':')) return;
    if (line.startsWith('data:')) {
      const value = line.slice(5);
      this.dataLines.push(value.startsWith(' ') ? value.slice(1) : value);
    }
  }
}

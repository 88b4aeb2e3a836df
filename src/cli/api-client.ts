import type { FileObject } from '../protocol/openai/files.js';
import { CliError } from './admin-client.js';

/** A small client of Tokenmill's OpenAI-compatible API (files and batches) with a user's API key, for the CLI. */
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly key: string | undefined,
  ) {}

  /** A JSON request; the parsed JSON answer, typed by the caller (the server's wire types). */
  async call<Answer = unknown>(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await this.send(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return JSON.parse((await response.text()) || 'null') as Answer;
  }

  /** Uploads `content` as a file (multipart, as the openai clients do). */
  async upload(filename: string, content: Buffer, purpose: string): Promise<FileObject> {
    const form = new FormData();
    form.append('purpose', purpose);
    form.append('file', new Blob([content]), filename);
    const response = await this.send('/v1/files', { method: 'POST', body: form });
    return JSON.parse(await response.text()) as FileObject;
  }

  /** A file's content. */
  async download(fileId: string): Promise<Buffer> {
    const response = await this.send(`/v1/files/${encodeURIComponent(fileId)}/content`, { method: 'GET' });
    return Buffer.from(await response.arrayBuffer());
  }

  private async send(path: string, init: { method: string; headers?: Record<string, string>; body?: string | FormData }): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl.replace(/\/$/, '')}${path}`, {
        ...init,
        headers: { ...(this.key ? { authorization: `Bearer ${this.key}` } : {}), ...init.headers },
        signal: AbortSignal.timeout(120_000),
      });
    } catch (error) {
      throw new CliError(`Cannot reach the server at ${this.baseUrl}: ${(error as Error).message}`);
    }
    if (!response.ok) {
      const text = await response.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      } catch {
        // keep the text
      }
      throw new CliError(`${response.status}: ${message}`);
    }
    return response;
  }
}

/** A small client of Tokenmill's admin and usage APIs, for the CLI. */
export class AdminClient {
  constructor(
    private readonly baseUrl: string,
    private readonly key: string,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl.replace(/\/$/, '')}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new CliError(`Cannot reach the server at ${this.baseUrl}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    if (!response.ok) {
      const message = (parsed as { error?: { message?: string } })?.error?.message ?? text;
      throw new CliError(`${response.status}: ${message}`);
    }
    return parsed;
  }
}

/** An error to print without a stack trace. */
export class CliError extends Error {}

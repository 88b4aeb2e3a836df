/** A raw HTTP answer: status, headers, and the body parsed as JSON when it is JSON (else the text). */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * Sends a request with fetch, for what the official client cannot send (malformed bodies, llama-server routes).
 * `body`: a string is sent as is; anything else as JSON; undefined sends no body.
 */
export async function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

import http from 'node:http';

/**
 * POSTs a JSON text over node:http with a keep-alive agent (no fetch: its own overhead would blur sub-millisecond
 * comparisons), with a Bearer key when given; resolves with the status and the body text.
 */
export function postJson(agent: http.Agent, url: string, body: string, key: string | null): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(key ? { authorization: `Bearer ${key}` } : {}) },
        timeout: 30_000,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

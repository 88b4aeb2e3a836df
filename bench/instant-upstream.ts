import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnBenchServer } from './child-processes.js';

const usage = { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 } };
const completion = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'instant',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello world' }, logprobs: null, finish_reason: 'stop' }],
  usage,
});
const chunk = (delta: Record<string, unknown>, finishReason: string | null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'instant', choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
const stream =
  chunk({ role: 'assistant', content: '' }, null) +
  chunk({ content: 'Hello' }, null) +
  chunk({ content: ' world' }, null) +
  chunk({}, 'stop') +
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'instant', choices: [], usage })}\n\n` +
  'data: [DONE]\n\n';

/**
 * An OpenAI-compatible upstream that answers every POST at once with a canned chat completion: one JSON body, or the
 * same answer as an SSE stream (with a usage chunk) when the request says `"stream": true`.
 */
export async function startInstantUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (data: string) => (body += data));
    request.on('end', () => {
      if (body.includes('"stream":true')) {
        response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        response.end(stream);
      } else {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) });
        response.end(completion);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The instant upstream in a process of its own (`node dist/bench/instant-upstream.js`, which prints its URL on
 * stdout and exits when its parent closes its stdin), as a real upstream is: calling it directly then costs the
 * same process hand-offs a client pays, and the gateway's share is what it adds to them.
 */
export function spawnInstantUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  return spawnBenchServer(fileURLToPath(import.meta.url), []);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startInstantUpstream();
  process.stdout.write(`${upstream.url}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

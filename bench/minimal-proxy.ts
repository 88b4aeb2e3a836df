import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnBenchServer } from './child-processes.js';

/**
 * The floor of the gateway bench: the least a Node.js process in the middle can add. It reads a POST's body, parses
 * it as JSON, sends it on to the upstream over a keep-alive node:http agent, reads the answer whole and sends it back
 * with the upstream's status and content type. No routing, validation, accounts or translation: on a given machine,
 * what the gateway adds above this floor is Tokenmill's own cost, and the floor is what two more process hand-offs
 * and a JSON round trip cost there (on the 2-vCPU VM the floor alone was 0.5-0.7 ms at p50).
 *
 * `node dist/bench/minimal-proxy.js UPSTREAM_URL` prints its URL on stdout and exits when its stdin closes.
 */
export function spawnMinimalProxy(upstreamUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  return spawnBenchServer(fileURLToPath(import.meta.url), [upstreamUrl]);
}

function serve(upstreamUrl: string): Promise<string> {
  const upstream = new URL(upstreamUrl);
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      const body = JSON.stringify(JSON.parse(text));
      const forward = http.request(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          path: request.url,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (answer) => {
          let answered = '';
          answer.setEncoding('utf8');
          answer.on('data', (chunk: string) => (answered += chunk));
          answer.on('end', () => {
            response.writeHead(answer.statusCode ?? 502, {
              'content-type': answer.headers['content-type'] ?? 'application/json',
              'content-length': Buffer.byteLength(answered),
            });
            response.end(answered);
          });
        },
      );
      forward.on('error', () => {
        response.writeHead(502);
        response.end();
      });
      forward.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${await serve(process.argv[2])}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

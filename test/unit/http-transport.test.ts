import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { HttpTransport } from '../../src/upstream/http-transport.js';
import { RequestGuard } from '../../src/upstream/request-guard.js';

/**
 * The upstream transport over a real HTTP server on loopback: bodies larger than its queue's high-water mark (undici
 * paused and resumed), a consumer slower than the socket, a body left unread, and the guard firing.
 */
const BODY = 'x'.repeat(3 * 1024 * 1024);
let server: http.Server;
let baseUrl: string;
const guards: RequestGuard[] = [];

before(async () => {
  server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/plain', 'x-echo': request.url ?? '' });
      response.end(BODY);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

after(async () => {
  for (const guard of guards) guard.dispose(false);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function guard(signal = new AbortController().signal): RequestGuard {
  const made = new RequestGuard(signal, 5_000, 10_000);
  guards.push(made);
  return made;
}

test('a large body reads whole, as text and through a slow iteration; headers and the path prefix come through', { timeout: 20_000 }, async () => {
  const transport = new HttpTransport(baseUrl);
  try {
    const response = await transport.post('/chat', { 'content-type': 'application/json' }, '{}', guard());
    assert.equal(response.status, 200);
    assert.equal(response.header('x-echo'), '/v1/chat');
    assert.equal(response.header('x-missing'), null);
    assert.equal((await response.text()).length, BODY.length);
    const slow = await transport.post('/chat', {}, '{}', guard());
    let bytes = 0;
    let chunks = 0;
    for await (const chunk of slow.body) {
      bytes += chunk.length;
      // Slower than the socket: the queue fills past its high-water mark and undici is paused, then resumed.
      if (++chunks % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(bytes, BODY.length);
  } finally {
    transport.close();
  }
});

test('leaving a body unread aborts that request only; the guard firing fails the body, or the request before it starts', { timeout: 20_000 }, async () => {
  const transport = new HttpTransport(baseUrl);
  try {
    const left = await transport.post('/a', {}, '{}', guard());
    for await (const _ of left.body) break;
    assert.equal((await (await transport.post('/b', {}, '{}', guard())).text()).length, BODY.length, 'the next request works');

    const caller = new AbortController();
    const cut = guard(caller.signal);
    const response = await transport.post('/c', {}, '{}', cut);
    let read = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of response.body) if (++read === 2) caller.abort();
      })(),
    );
    assert.equal(cut.firedBy, 'client');

    const gone = new AbortController();
    gone.abort();
    await assert.rejects(transport.post('/d', {}, '{}', guard(gone.signal)));
  } finally {
    transport.close();
  }
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/config/load-config.js';
import { spawnServer, startTestServer, STORIES, TINY_RANDOM, type TestServer } from '../helpers/test-server.js';

/** Reads an SSE response body as text until it ends, calling `onText` with everything read so far. */
async function readStream(response: Response, onText?: (text: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    onText?.(text);
  }
  return text;
}

function streamBody(model: string, maxTokens: number) {
  return JSON.stringify({
    model,
    prompt: 'Once upon a time',
    max_tokens: maxTokens,
    ignore_eos: true,
    stream: true,
  });
}

describe('keep-alive pings while a stream waits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: { sse_ping_interval_ms: 100 },
      models: [{ id: TINY_RANDOM, path: `${process.cwd()}/models/llama-2-tiny-random.gguf`, sequences: 1, max_queue: 4 }],
    });
  });
  after(() => server.close());

  test('a queued stream receives `: ping` comments before its first token, then completes', async () => {
    // The first request takes the only sequence for a while (headers go out with its first event).
    const busy = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: streamBody(TINY_RANDOM, 1500) });
    const busyDone = readStream(busy);
    const queued = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: streamBody(TINY_RANDOM, 5) });
    assert.equal(queued.status, 200);
    const text = await readStream(queued);
    const ping = text.indexOf(': ping');
    assert.ok(ping >= 0, 'no keep-alive comment was sent');
    assert.ok(ping < text.indexOf('data: {'), 'the ping came after the first data');
    assert.match(text, /data: \[DONE\]/);
    assert.match(await busyDone, /data: \[DONE\]/);
  });
});

describe('graceful shutdown on SIGTERM', () => {
  test('in-flight streams finish, new work is refused, the process exits 0', async () => {
    const { child, url } = await spawnServer([], { TOKENMILL_SHUTDOWN_GRACE_MS: '20000' });
    const response = await fetch(`${url}/v1/completions`, { method: 'POST', body: streamBody(STORIES, 400) });
    let signalled = false;
    const text = await readStream(response, (soFar) => {
      if (!signalled && soFar.includes('data: {')) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    assert.ok(signalled);
    assert.match(text, /data: \[DONE\]/);
    assert.match(text, /"finish_reason":"length"/);
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  });

  test('after the grace period, in-flight streams are aborted cleanly and the process exits 0', async () => {
    const { child, url } = await spawnServer([], { TOKENMILL_SHUTDOWN_GRACE_MS: '300' });
    const response = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: TINY_RANDOM, prompt: 'x', max_tokens: 4000, ignore_eos: true, stream: true }),
    });
    let signalled = false;
    const started = Date.now();
    const exited = once(child, 'exit');
    const text = await readStream(response, (soFar) => {
      if (!signalled && soFar.includes('data: {')) {
        signalled = true;
        child.kill('SIGTERM');
      }
    }).catch(() => 'connection closed');
    assert.ok(signalled);
    assert.doesNotMatch(text, /"finish_reason":"length"/);
    const [code] = await exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10_000, `shutdown took ${Date.now() - started} ms`);
  });
});

describe('one server per SQLite database', () => {
  test('a second `tokenmill serve` on the same data directory exits 1 with a clear message; the first keeps serving', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tokenmill-two-'));
    const first = await spawnServer([], { TOKENMILL_DATA_DIR: dataDir });
    try {
      const second = spawn(process.execPath, [path.join(packageRoot, 'bin', 'tokenmill.js'), 'serve', '--port', '0'], {
        env: { ...process.env, TOKENMILL_AUTH: 'off', TOKENMILL_DATA_DIR: dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      second.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = await once(second, 'exit');
      assert.equal(code, 1);
      assert.match(stderr, /^tokenmill: Another Tokenmill process serves the SQLite database .*use PostgreSQL \(DATABASE_URL\)/);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
      assert.equal((await fetch(`${first.url}/health`)).status, 200);
    } finally {
      first.child.kill('SIGTERM');
      await once(first.child, 'exit');
    }
  });
});

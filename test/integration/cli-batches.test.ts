import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/config/load-config.js';
import { chatLine, jsonl } from '../helpers/batch-lines.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const run = promisify(execFile);
let server: TestServer;

async function tokenmill(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(packageRoot, 'bin', 'tokenmill.js'), ...args], { env: { ...process.env, TOKENMILL_URL: server.url } });
}

before(async () => {
  server = await startTestServer({ batches: { poll_interval_ms: 100 } });
});
after(() => server.close());

test('tokenmill batches create --wait shows progress and downloads the results; list, get, results, cancel', async () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'tokenmill-cli-batch-'));
  const input = path.join(directory, 'requests.jsonl');
  writeFileSync(input, jsonl([chatLine('one'), chatLine('two'), chatLine('bad', { model: 'nope' })]));
  const created = await tokenmill('batches', 'create', input, '--endpoint', '/v1/chat/completions', '--wait', '--poll-interval', '100', '--output-dir', directory, '--metadata', 'team=cli');
  const batch = JSON.parse(created.stdout);
  assert.equal(batch.status, 'completed');
  assert.deepEqual(batch.metadata, { team: 'cli' });
  assert.match(created.stderr, /batch batch_\w+ \[.*\] 3\/3 lines/, 'a progress bar');
  const output = readFileSync(batch.downloaded.output, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(output.map((line) => line.custom_id), ['one', 'two']);
  const errors = readFileSync(batch.downloaded.errors, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(errors.map((line) => line.response.body.error.code), ['model_not_found']);

  const listed = JSON.parse((await tokenmill('batches', 'list', '--limit', '5')).stdout);
  assert.ok(listed.data.some((entry: { id: string }) => entry.id === batch.id));
  assert.equal(JSON.parse((await tokenmill('batches', 'get', batch.id)).stdout).id, batch.id);
  const results = JSON.parse((await tokenmill('batches', 'results', batch.id, '--output-dir', directory)).stdout);
  assert.equal(readFileSync(results.output, 'utf8'), readFileSync(batch.downloaded.output, 'utf8'));
  await assert.rejects(tokenmill('batches', 'cancel', batch.id), (error: { code?: number; stderr?: string }) => error.code === 1 && /400/.test(error.stderr ?? ''));
});

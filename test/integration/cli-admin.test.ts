import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/config/load-config.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const run = promisify(execFile);
const ADMIN_KEY = 'tm-admin-cli-test-0123456789abcdef';
let server: TestServer;

async function tokenmill(...args: string[]): Promise<any> {
  const { stdout } = await run(process.execPath, [path.join(packageRoot, 'bin', 'tokenmill.js'), ...args], {
    env: { ...process.env, TOKENMILL_URL: server.url, TOKENMILL_ADMIN_KEY: ADMIN_KEY },
  });
  return JSON.parse(stdout);
}

before(async () => {
  server = await startTestServer({ auth: { enabled: true, admin_key: ADMIN_KEY, bootstrap_demo_account: false } });
});
after(() => server.close());

test('the CLI mirrors the admin API: accounts, keys, credits, usage', async () => {
  const account = await tokenmill('accounts', 'create', '--name', 'cli-co', '--credits', '2');
  assert.equal(account.balance_micros, 2_000_000);
  const key = await tokenmill('keys', 'create', '--account', account.id, '--name', 'cli-key', '--rpm', '10', '--models', 'stories-260k');
  assert.match(key.key, /^tm-/);
  assert.deepEqual(key.models, ['stories-260k']);
  const credited = await tokenmill('credits', 'add', '--account', account.id, '--amount', '1.5', '--note', 'top-up');
  assert.equal(credited.balance_micros, 3_500_000);
  assert.equal((await tokenmill('keys', 'list', '--account', account.id)).data.length, 1);
  assert.equal((await tokenmill('usage', '--account', account.id)).data.length, 0);
  const revoked = await tokenmill('keys', 'revoke', key.id);
  assert.ok(revoked.revoked_at > 0);
});

test('CLI errors are one clear line and a non-zero exit', async () => {
  await assert.rejects(
    run(process.execPath, [path.join(packageRoot, 'bin', 'tokenmill.js'), 'accounts', 'get', 'acct_missing'], {
      env: { ...process.env, TOKENMILL_URL: server.url, TOKENMILL_ADMIN_KEY: ADMIN_KEY },
    }),
    (error: { code?: number; stderr?: string }) => error.code === 1 && /404/.test(error.stderr ?? ''),
  );
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { openStore } from '../../../src/store/database.js';
import type { StoreOptions } from '../store-backends.js';
import type { StoreContext } from './store-context.js';

/** Runs `openStore(options).migrate()` in a separate Node process, as a second server instance would. */
function migrateInChildProcess(options: StoreOptions): Promise<void> {
  const databaseModule = new URL('../../../src/store/database.js', import.meta.url).href;
  const script = `const { openStore } = await import(process.argv[1]);
const store = await openStore(JSON.parse(process.argv[2]));
try { await store.migrate(); } finally { await store.close(); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, databaseModule, JSON.stringify(options)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`migrate exited ${code}: ${stderr}`))));
  });
}

export function settingsAndMigrationCases(context: StoreContext): void {
  test('settings: setSettingIfAbsent keeps the first value, even when raced; setSetting replaces', async () => {
    const store = context.store();
    const key = `setting_${randomBytes(4).toString('hex')}`;
    assert.equal(await store.getSetting(key), null);
    const values = await Promise.all(Array.from({ length: 10 }, (_, index) => store.setSettingIfAbsent(key, `value ${index}`)));
    assert.equal(new Set(values).size, 1);
    assert.equal(await store.getSetting(key), values[0]);
    assert.equal(await store.setSettingIfAbsent(key, 'other'), values[0]);
    await store.setSetting(key, 'replaced');
    assert.equal(await store.getSetting(key), 'replaced');
    await store.setSetting(`${key}_new`, 'fresh');
    assert.equal(await store.getSetting(`${key}_new`), 'fresh');
  });

  test('migrate is idempotent and safe from several processes at once', async () => {
    const backend = context.backend;
    await backend.whileMigrating(() => context.store().migrate());
    const options = await backend.prepare();
    // Tools and a starting server's migrations: several processes at once on one database (no instance lock).
    const shared = { ...options, exclusive: false };
    await backend.whileMigrating(() =>
      Promise.all([migrateInChildProcess(shared), migrateInChildProcess(shared), migrateInChildProcess(shared)]),
    );
    const store = await openStore(options);
    try {
      await backend.whileMigrating(() => store.migrate());
      const account = await store.createAccount({ name: 'after concurrent migrations', now: 1 });
      assert.deepEqual(await store.listAccounts(), [account]);
    } finally {
      await store.close();
    }
  });
}

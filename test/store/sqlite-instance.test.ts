import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openStore } from '../../src/store/database.js';
import { fundedAccount, newKey, requestId, RESERVE_NOW, usageRecord } from './contract/store-context.js';

/**
 * The server's SQLite mode (decision 0021): one process per database (an instance lock), holds of interactive requests
 * in that process's memory. What the contract suite cannot see: the lock, and that a hold writes nothing.
 */
const directories: string[] = [];
after(async () => {
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const directory = await mkdtemp(path.join(tmpdir(), 'tokenmill-instance-'));
  directories.push(directory);
  return directory;
}

function reservationRows(directory: string): number {
  const database = new BetterSqlite3(path.join(directory, 'tokenmill.db'), { readonly: true });
  try {
    return (database.prepare('select count(*) as n from reservations').get() as { n: number }).n;
  } finally {
    database.close();
  }
}

test('a second exclusive store on the same SQLite database is refused until the first closes', async () => {
  const directory = await dataDir();
  const first = await openStore({ databaseUrl: null, dataDir: directory, exclusive: true });
  await first.migrate();
  await assert.rejects(openStore({ databaseUrl: null, dataDir: directory, exclusive: true }), /Another Tokenmill process serves the SQLite database/);
  const tool = await openStore({ databaseUrl: null, dataDir: directory });
  assert.deepEqual(await tool.listAccounts(), [], 'a non-exclusive open (a tool, a migration) still works');
  await tool.close();
  await first.close();
  const second = await openStore({ databaseUrl: null, dataDir: directory, exclusive: true });
  await second.close();
});

test('a holder killed with SIGKILL leaves no lock and no held funds behind', async () => {
  const directory = await dataDir();
  const setup = await openStore({ databaseUrl: null, dataDir: directory });
  await setup.migrate();
  const account = await fundedAccount(setup, 10_000);
  await setup.close();
  const databaseModule = new URL('../../src/store/database.js', import.meta.url).href;
  const script = `const { openStore } = await import(process.argv[1]);
const store = await openStore({ databaseUrl: null, dataDir: process.argv[2], exclusive: true });
const result = await store.reserve({ requestId: 'req_killed', accountId: process.argv[3], keyId: null, amountMicros: 9000, now: 1 });
process.stdout.write(result + '\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, databaseModule, directory, account.id], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
  assert.equal(line, 'reserved');
  await assert.rejects(openStore({ databaseUrl: null, dataDir: directory, exclusive: true }), /Another Tokenmill process/);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const after = await openStore({ databaseUrl: null, dataDir: directory, exclusive: true });
  try {
    assert.equal((await after.getAccount(account.id))?.balanceMicros, 10_000, 'nothing was written for the hold');
    assert.equal(await after.reserve({ requestId: requestId(), accountId: account.id, keyId: null, amountMicros: 10_000, now: RESERVE_NOW }), 'reserved');
  } finally {
    await after.close();
  }
});

test('an exclusive store holds interactive requests in memory and batch lines as rows', async () => {
  const directory = await dataDir();
  const store = await openStore({ databaseUrl: null, dataDir: directory, exclusive: true });
  try {
    await store.migrate();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id);
    const interactive = { requestId: requestId(), accountId: account.id, keyId: key.id, amountMicros: 3_000, now: RESERVE_NOW };
    assert.equal(await store.reserve(interactive), 'reserved');
    assert.equal(reservationRows(directory), 0);
    assert.equal(await store.reserve({ ...interactive, requestId: requestId(), durable: true }), 'reserved');
    assert.equal(reservationRows(directory), 1);
    assert.equal((await store.getAccount(account.id))?.balanceMicros, 4_000);
    await assert.rejects(store.reserve(interactive), /already holds funds/);
  } finally {
    await store.close();
  }
});

test('the funds a reservation checks follow every write: settlements, credits, a key limit, an edit by hand', async () => {
  const directory = await dataDir();
  const store = await openStore({ databaseUrl: null, dataDir: directory, exclusive: true });
  const byHand = (sql: string, ...values: unknown[]) => {
    const database = new BetterSqlite3(path.join(directory, 'tokenmill.db'), { timeout: 5000 });
    try {
      database.prepare(sql).run(...values);
    } finally {
      database.close();
    }
  };
  const reserve = (accountId: string, keyId: string | null, amountMicros: number) =>
    store.reserve({ requestId: requestId(), accountId, keyId, amountMicros, now: RESERVE_NOW });
  try {
    await store.migrate();
    const account = await fundedAccount(store, 10_000);
    const key = await newKey(store, account.id, { spendLimitMicros: 8_000 });
    // A hold, its settlement committed on the settlement thread: the next check sees the charge, not the kept balance.
    const first = requestId();
    assert.equal(await store.reserve({ requestId: first, accountId: account.id, keyId: key.id, amountMicros: 6_000, now: RESERVE_NOW }), 'reserved');
    await store.settle(usageRecord({ id: first, accountId: account.id, keyId: key.id, costMicros: 5_000 }));
    assert.equal(await reserve(account.id, key.id, 5_001), 'insufficient_balance', '10,000 - 5,000 charged');
    assert.equal(await reserve(account.id, null, 5_000), 'reserved');
    // Credits through the store (Kysely, this connection).
    await store.addCredits({ accountId: account.id, amountMicros: 2_000, note: null, now: RESERVE_NOW });
    assert.equal(await reserve(account.id, null, 2_000), 'reserved', 'the new credits are seen at once');
    assert.equal(await reserve(account.id, null, 1), 'insufficient_balance');
    // Edits by hand in the database (another connection): a new balance, a key limit, a suspension.
    byHand('update accounts set balance_micros = balance_micros + 50000 where id = ?', account.id);
    assert.equal(await reserve(account.id, key.id, 3_001), 'key_spend_limit', '8,000 limit - 5,000 spent');
    byHand('update api_keys set spend_limit_micros = 100000 where id = ?', key.id);
    assert.equal(await reserve(account.id, key.id, 3_001), 'reserved');
    byHand("update accounts set status = 'suspended' where id = ?", account.id);
    assert.equal(await reserve(account.id, key.id, 1), 'account_inactive');
  } finally {
    await store.close();
  }
});

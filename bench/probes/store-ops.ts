import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/database.js';
import { hashSecret } from '../../src/core/keys/secrets.js';

/**
 * `node dist/bench/probes/store-ops.js [--postgres]`: main-thread time of the request path's store operations
 * (key lookup, reserve, settle), microseconds per operation, median of rounds.
 */
const postgres = process.argv.includes('--postgres');
const dataDir = await mkdtemp(join(tmpdir(), 'tm-store-ops-'));
const store = await openStore({ databaseUrl: postgres ? 'postgres://postgres@127.0.0.1:5432/test' : null, dataDir });
await store.migrate();
const now = Math.floor(Date.now() / 1000);
const account = await store.createAccount({ name: `probe-${Date.now()}`, now });
await store.addCredits({ accountId: account.id, amountMicros: 1e12, note: null, now });
const secretHash = hashSecret(`tm-probe-${Date.now()}`);
const key = await store.createKey({ accountId: account.id, name: 'probe', prefix: 'tm-probe', secretHash, expiresAt: null, models: null, rpm: null, tpm: null, maxConcurrency: null, spendLimitMicros: null, now });
const rounds = 5;
const perRound = postgres ? 200 : 2000;
const results: Record<string, number[]> = { lookup: [], reserve: [], settle: [] };
let counter = 0;
for (let round = 0; round < rounds; round++) {
  let start = performance.now();
  for (let i = 0; i < perRound; i++) await store.findKeyWithAccountByHash(secretHash);
  results.lookup.push(((performance.now() - start) * 1000) / perRound);
  const ids = Array.from({ length: perRound }, () => `req_probe_${counter++}_${Date.now()}`);
  start = performance.now();
  for (const id of ids) await store.reserve({ requestId: id, accountId: account.id, keyId: key.id, amountMicros: 1000, now });
  results.reserve.push(((performance.now() - start) * 1000) / perRound);
  start = performance.now();
  for (const id of ids) {
    await store.settle({ id, createdAt: now, accountId: account.id, keyId: key.id, model: 'm', endpoint: '/v1/chat/completions', status: 'completed', promptTokens: 10, cachedTokens: 0, completionTokens: 5, costMicros: 500, latencyMs: 1, ttftMs: 1, batchId: null });
  }
  results.settle.push(((performance.now() - start) * 1000) / perRound);
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [name, values] of Object.entries(results)) console.log(`${name.padEnd(8)} ${median(values).toFixed(1)} us/op`);
await store.close();
await rm(dataDir, { recursive: true, force: true });

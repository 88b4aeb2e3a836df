import { formatAuthOverhead, runAuthOverhead } from './scenarios/auth-overhead.js';

/**
 * `node dist/bench/auth-overhead.js [--postgres]`: what keys, limits and the ledger add per request, against the
 * same server with TOKENMILL_AUTH=off. Default: SQLite and in-memory limits; --postgres adds a run on PostgreSQL
 * and Redis (127.0.0.1, as the tests use them).
 */
const results = [await runAuthOverhead({ backend: 'SQLite + memory limiter' })];
if (process.argv.includes('--postgres')) {
  results.push(
    await runAuthOverhead({
      backend: 'PostgreSQL + Redis',
      env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', REDIS_URL: 'redis://127.0.0.1:6379' },
    }),
  );
}
console.log(formatAuthOverhead(results));
process.exit(0);

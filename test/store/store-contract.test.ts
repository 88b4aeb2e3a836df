import { after, before, describe } from 'node:test';
import { openStore } from '../../src/store/database.js';
import type { Store } from '../../src/store/store.js';
import { accountsCases } from './contract/accounts-cases.js';
import { batchCases } from './contract/batch-cases.js';
import { keysCases } from './contract/keys-cases.js';
import { reservationCases } from './contract/reservation-cases.js';
import { settingsAndMigrationCases } from './contract/settings-and-migration-cases.js';
import type { StoreContext } from './contract/store-context.js';
import { usageCases } from './contract/usage-cases.js';
import { postgresBackend, postgresUnavailable, sqliteBackend, type StoreBackend, type StoreOptions } from './store-backends.js';

/** One suite, every backend: the same cases must pass on SQLite and PostgreSQL. */
function describeStoreContract(backend: StoreBackend, skip: string | false): void {
  describe(`Store contract on ${backend.name}`, { skip }, () => {
    let store: Store | undefined;
    let options: StoreOptions | undefined;
    before(async () => {
      options = await backend.prepare();
      store = await openStore(options);
      await backend.whileMigrating(() => (store ?? assertUnreachable('store')).migrate());
    });
    after(async () => {
      await store?.close();
      await backend.cleanup();
    });
    const context: StoreContext = {
      backend,
      store: () => store ?? assertUnreachable('store'),
      options: () => options ?? assertUnreachable('options'),
    };
    accountsCases(context);
    keysCases(context);
    reservationCases(context);
    usageCases(context);
    settingsAndMigrationCases(context);
    batchCases(context);
  });
}

function assertUnreachable(what: string): never {
  throw new Error(`${what} used outside a test`);
}

describeStoreContract(sqliteBackend(), false);
describeStoreContract(sqliteBackend({ exclusive: true }), false);
describeStoreContract(postgresBackend(), (await postgresUnavailable()) ?? false);

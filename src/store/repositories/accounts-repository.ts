import type { Kysely, Selectable } from 'kysely';
import type { Account, AccountLimits } from '../store.js';
import type { AccountsTable, Tables } from '../tables.js';
import { newId } from '../new-id.js';
import { assertSafeInteger, toSafeInteger } from '../to-safe-integer.js';

export function rowToAccount(row: Selectable<AccountsTable>): Account {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    balanceMicros: toSafeInteger(row.balance_micros),
    createdAt: toSafeInteger(row.created_at),
    limits: { rpm: row.rpm ?? null, tpm: row.tpm ?? null, maxConcurrency: row.max_concurrency ?? null },
  };
}

const UNLIMITED: AccountLimits = { rpm: null, tpm: null, maxConcurrency: null };

/** Accounts and their credit entries. Balance moves for requests live in ReservationsRepository. */
export class AccountsRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  async create(input: { name: string; now: number; limits?: AccountLimits }): Promise<Account> {
    const limits = input.limits ?? UNLIMITED;
    const account: Account = { id: newId('acct'), name: input.name, status: 'active', balanceMicros: 0, createdAt: input.now, limits };
    await this.db
      .insertInto('accounts')
      .values({
        id: account.id,
        name: account.name,
        status: account.status,
        balance_micros: 0,
        created_at: input.now,
        rpm: limits.rpm,
        tpm: limits.tpm,
        max_concurrency: limits.maxConcurrency,
      })
      .execute();
    return account;
  }

  async setLimits(id: string, limits: AccountLimits): Promise<Account | null> {
    const row = await this.db
      .updateTable('accounts')
      .set({ rpm: limits.rpm, tpm: limits.tpm, max_concurrency: limits.maxConcurrency })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row ? rowToAccount(row) : null;
  }

  async get(id: string): Promise<Account | null> {
    const row = await this.db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? rowToAccount(row) : null;
  }

  async list(): Promise<Account[]> {
    const rows = await this.db.selectFrom('accounts').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(rowToAccount);
  }

  /**
   * Moves the balance by `amountMicros` (signed) and writes a `credit` ledger entry, in one transaction. The
   * conditional UPDATE refuses a debit below `floor` (0, or what requests in flight hold outside the database:
   * decision 0021; read inside the transaction), and a missing account, by matching no row: returns null.
   */
  async addCredits(
    input: { accountId: string; amountMicros: number; note: string | null; now: number },
    floor: () => number = () => 0,
  ): Promise<Account | null> {
    assertSafeInteger(input.amountMicros, 'amountMicros', true);
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('accounts')
        .set((eb) => ({ balance_micros: eb('balance_micros', '+', input.amountMicros).$castTo<number>() }))
        .where('id', '=', input.accountId)
        .where((eb) => eb(eb('balance_micros', '+', input.amountMicros), '>=', floor()))
        .returningAll()
        .executeTakeFirst();
      if (!row) return null;
      await trx
        .insertInto('ledger_entries')
        .values({
          id: newId('led'),
          account_id: input.accountId,
          amount_micros: input.amountMicros,
          kind: 'credit',
          request_id: null,
          note: input.note,
          created_at: input.now,
        })
        .execute();
      return rowToAccount(row);
    });
  }
}

import { Command, InvalidArgumentError, Option } from 'commander';
import { AdminClient } from './admin-client.js';

function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError('not a number');
  return parsed;
}

function integer(value: string): number {
  const parsed = number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError('not an integer');
  return parsed;
}

interface ConnectionOptions {
  url: string;
  adminKey?: string;
}

/** Adds the connection options every admin command takes. */
function connected(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'server address').env('TOKENMILL_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--admin-key <key>', 'admin key').env('TOKENMILL_ADMIN_KEY'));
}

function client(options: ConnectionOptions): AdminClient {
  if (!options.adminKey) throw new InvalidArgumentError('an admin key is needed: --admin-key or TOKENMILL_ADMIN_KEY');
  return new AdminClient(options.url, options.adminKey);
}

interface AccountLimitOptions {
  rpm?: number;
  tpm?: number;
  maxConcurrency?: number;
}

function limitFields(options: AccountLimitOptions): Record<string, number | null> {
  return { rpm: options.rpm ?? null, tpm: options.tpm ?? null, max_concurrency: options.maxConcurrency ?? null };
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `tokenmill accounts|keys|credits|usage`: the admin API from the command line. */
export function addAdminCommands(program: Command): void {
  const accounts = program.command('accounts').description('Manage accounts (admin API)');
  connected(accounts.command('create').description('Create an account'))
    .requiredOption('--name <name>', 'account name')
    .option('--credits <usd>', 'initial credits, USD', number, 0)
    .option('--rpm <n>', 'requests per minute for the whole account', integer)
    .option('--tpm <n>', 'tokens per minute for the whole account', integer)
    .option('--max-concurrency <n>', 'concurrent requests for the whole account', integer)
    .action(async (options: ConnectionOptions & AccountLimitOptions & { name: string; credits: number }) =>
      print(
        await client(options).call('POST', '/v1/admin/accounts', {
          name: options.name,
          credits_usd: options.credits,
          ...limitFields(options),
        }),
      ),
    );
  connected(accounts.command('limits <id>').description("Replace an account's limits (omitted = unlimited)"))
    .option('--rpm <n>', 'requests per minute', integer)
    .option('--tpm <n>', 'tokens per minute', integer)
    .option('--max-concurrency <n>', 'concurrent requests', integer)
    .action(async (id: string, options: ConnectionOptions & AccountLimitOptions) =>
      print(await client(options).call('PATCH', `/v1/admin/accounts/${encodeURIComponent(id)}`, limitFields(options))),
    );
  connected(accounts.command('list').description('List accounts')).action(async (options: ConnectionOptions) =>
    print(await client(options).call('GET', '/v1/admin/accounts')),
  );
  connected(accounts.command('get <id>').description('Show an account')).action(async (id: string, options: ConnectionOptions) =>
    print(await client(options).call('GET', `/v1/admin/accounts/${encodeURIComponent(id)}`)),
  );

  const keys = program.command('keys').description('Manage API keys (admin API)');
  connected(keys.command('create').description('Create an API key; its secret is shown once'))
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--name <name>', 'key name')
    .option('--models <ids>', 'comma-separated model ids the key may use')
    .option('--rpm <n>', 'requests per minute', integer)
    .option('--tpm <n>', 'tokens per minute', integer)
    .option('--max-concurrency <n>', 'concurrent requests', integer)
    .option('--spend-limit <usd>', 'spend limit, USD', number)
    .option('--expires-at <unix>', 'expiry, unix seconds', integer)
    .action(
      async (
        options: ConnectionOptions & {
          account: string;
          name: string;
          models?: string;
          rpm?: number;
          tpm?: number;
          maxConcurrency?: number;
          spendLimit?: number;
          expiresAt?: number;
        },
      ) =>
        print(
          await client(options).call('POST', `/v1/admin/accounts/${encodeURIComponent(options.account)}/keys`, {
            name: options.name,
            models: options.models?.split(',').map((model) => model.trim()).filter(Boolean),
            rpm: options.rpm,
            tpm: options.tpm,
            max_concurrency: options.maxConcurrency,
            spend_limit_usd: options.spendLimit,
            expires_at: options.expiresAt,
          }),
        ),
    );
  connected(keys.command('list').description("List an account's keys"))
    .requiredOption('--account <id>', 'account id')
    .action(async (options: ConnectionOptions & { account: string }) =>
      print(await client(options).call('GET', `/v1/admin/accounts/${encodeURIComponent(options.account)}/keys`)),
    );
  connected(keys.command('revoke <id>').description('Revoke a key (at once, on every instance)')).action(
    async (id: string, options: ConnectionOptions) => print(await client(options).call('DELETE', `/v1/admin/keys/${encodeURIComponent(id)}`)),
  );

  const credits = program.command('credits').description('Account credits (admin API)');
  connected(credits.command('add').description('Add (or, negative, remove) credits'))
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--amount <usd>', 'amount, USD (negative to debit)', number)
    .option('--note <text>', 'ledger note')
    .action(async (options: ConnectionOptions & { account: string; amount: number; note?: string }) =>
      print(
        await client(options).call('POST', `/v1/admin/accounts/${encodeURIComponent(options.account)}/credits`, {
          amount_usd: options.amount,
          note: options.note,
        }),
      ),
    );

  connected(program.command('usage').description('Usage totals, or the latest requests with --requests'))
    .option('--account <id>', 'one account (default: all)')
    .option('--group-by <group>', 'model, key or day', 'model')
    .option('--start <unix>', 'from (unix seconds)', integer)
    .option('--end <unix>', 'until (unix seconds)', integer)
    .option('--requests', 'list the latest usage records instead')
    .option('--limit <n>', 'records with --requests', integer, 20)
    .action(
      async (
        options: ConnectionOptions & { account?: string; groupBy: string; start?: number; end?: number; requests?: boolean; limit: number },
      ) => {
        const query = new URLSearchParams();
        if (options.account) query.set('account_id', options.account);
        if (options.requests) {
          query.set('limit', String(options.limit));
          print(await client(options).call('GET', `/v1/usage/requests?${query}`));
          return;
        }
        query.set('group_by', options.groupBy);
        if (options.start !== undefined) query.set('start', String(options.start));
        if (options.end !== undefined) query.set('end', String(options.end));
        print(await client(options).call('GET', `/v1/usage?${query}`));
      },
    );
}

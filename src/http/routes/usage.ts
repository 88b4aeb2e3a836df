import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidRequest, TokenmillError } from '../../core/errors.js';
import { usageQuerySchema, usageRequestsQuerySchema } from '../../protocol/admin/admin.js';
import type { AppDependencies } from '../app.js';
import { authenticate } from '../authenticate.js';
import { usageGroupToWire, usageRecordToWire } from '../encoders/admin.js';
import { parseBody } from '../parse-body.js';

/**
 * The usage API. An inference key sees its own account only; the admin key sees every account, or one with
 * `account_id`.
 */
export function registerUsage(app: FastifyInstance, deps: AppDependencies): void {
  const preHandler = authenticate(deps, 'any');
  const scope = (request: FastifyRequest, accountId: string | undefined): string | null => {
    const principal = request.principal;
    if (principal.kind === 'admin') return accountId ?? null;
    if (principal.kind === 'key') {
      if (accountId !== undefined && accountId !== principal.account.id) {
        throw new TokenmillError('permission', 'forbidden', 'An API key can only read its own account.', { param: 'account_id' });
      }
      return principal.account.id;
    }
    throw new TokenmillError('not_found', 'unknown_url', 'Accounts are disabled on this server.');
  };

  app.get('/v1/usage', { preHandler }, async (request) => {
    const query = parseBody(usageQuerySchema, request.query);
    const end = query.end ?? Math.floor(deps.now() / 1000) + 1;
    const start = query.start ?? 0;
    if (start > end) throw invalidRequest('start must not be after end.', 'start');
    const rows = await deps.auth!.accounts.usageSummary({ accountId: scope(request, query.account_id), start, end, groupBy: query.group_by });
    return { object: 'list', data: rows.map(usageGroupToWire) };
  });

  app.get('/v1/usage/requests', { preHandler }, async (request) => {
    const query = parseBody(usageRequestsQuerySchema, request.query);
    const page = await deps.auth!.accounts.listUsage({
      accountId: scope(request, query.account_id),
      limit: query.limit,
      after: query.after ?? null,
    });
    return { object: 'list', data: page.records.map(usageRecordToWire), has_more: page.hasMore };
  });
}

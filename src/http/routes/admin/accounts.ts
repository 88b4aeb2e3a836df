import type { FastifyInstance } from 'fastify';
import { accountLimitsSchema, addCreditsSchema, createAccountSchema, createKeySchema } from '../../../protocol/admin/admin.js';
import type { AccountLimits } from '../../../store/store.js';
import type { AppDependencies } from '../../app.js';
import { authenticate } from '../../authenticate.js';
import { accountToWire, keyToWire } from '../../encoders/admin.js';
import { parseBody } from '../../parse-body.js';

type IdParams = { Params: { id: string } };

/** The admin API: accounts, credits and keys. Admin key only. */
export function registerAdminAccounts(app: FastifyInstance, deps: AppDependencies): void {
  const preHandler = authenticate(deps, 'admin');
  const accounts = () => deps.auth!.accounts;

  app.post('/v1/admin/accounts', { preHandler }, async (request, reply) => {
    const wire = parseBody(createAccountSchema, request.body);
    return reply.code(201).send(accountToWire(await accounts().createAccount(wire.name, wire.credits_usd, limitsOf(wire))));
  });
  app.patch<IdParams>('/v1/admin/accounts/:id', { preHandler }, async (request) => {
    const wire = parseBody(accountLimitsSchema, request.body);
    return accountToWire(await accounts().setLimits(request.params.id, limitsOf(wire)));
  });
  app.get('/v1/admin/accounts', { preHandler }, async () => ({
    object: 'list',
    data: (await accounts().listAccounts()).map(accountToWire),
  }));
  app.get<IdParams>('/v1/admin/accounts/:id', { preHandler }, async (request) =>
    accountToWire(await accounts().getAccount(request.params.id)),
  );
  app.post<IdParams>('/v1/admin/accounts/:id/credits', { preHandler }, async (request) => {
    const wire = parseBody(addCreditsSchema, request.body);
    return accountToWire(await accounts().addCredits(request.params.id, wire.amount_usd, wire.note ?? null));
  });
  app.post<IdParams>('/v1/admin/accounts/:id/keys', { preHandler }, async (request, reply) => {
    const wire = parseBody(createKeySchema, request.body);
    const { key, secret } = await accounts().createKey(request.params.id, {
      name: wire.name,
      models: wire.models,
      rpm: wire.rpm,
      tpm: wire.tpm,
      maxConcurrency: wire.max_concurrency,
      spendLimitUsd: wire.spend_limit_usd,
      expiresAt: wire.expires_at,
    });
    return reply.code(201).send(keyToWire(key, secret));
  });
  app.get<IdParams>('/v1/admin/accounts/:id/keys', { preHandler }, async (request) => ({
    object: 'list',
    data: (await accounts().listKeys(request.params.id)).map((key) => keyToWire(key)),
  }));
  app.delete<IdParams>('/v1/admin/keys/:id', { preHandler }, async (request) => ({
    ...keyToWire(await accounts().revokeKey(request.params.id)),
    deleted: true,
  }));
}

function limitsOf(wire: { rpm?: number | null; tpm?: number | null; max_concurrency?: number | null }): AccountLimits {
  return { rpm: wire.rpm ?? null, tpm: wire.tpm ?? null, maxConcurrency: wire.max_concurrency ?? null };
}

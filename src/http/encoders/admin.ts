import { microsToUsd } from '../../core/billing/prices.js';
import type { AccountWire, ApiKeyWire, UsageGroupWire, UsageRecordWire } from '../../protocol/admin/admin.js';
import type { Account, ApiKey, UsageRecord, UsageSummaryRow } from '../../store/store.js';

export function accountToWire(account: Account): AccountWire {
  return {
    id: account.id,
    object: 'account',
    name: account.name,
    status: account.status,
    balance_micros: account.balanceMicros,
    balance_usd: microsToUsd(account.balanceMicros),
    created_at: account.createdAt,
    rpm: account.limits.rpm,
    tpm: account.limits.tpm,
    max_concurrency: account.limits.maxConcurrency,
  };
}

export function keyToWire(key: ApiKey, secret?: string): ApiKeyWire {
  return {
    id: key.id,
    object: 'api_key',
    account_id: key.accountId,
    name: key.name,
    prefix: key.prefix,
    created_at: key.createdAt,
    last_used_at: key.lastUsedAt,
    expires_at: key.expiresAt,
    revoked_at: key.revokedAt,
    models: key.models,
    rpm: key.rpm,
    tpm: key.tpm,
    max_concurrency: key.maxConcurrency,
    spend_limit_micros: key.spendLimitMicros,
    spent_micros: key.spentMicros,
    ...(secret === undefined ? {} : { key: secret }),
  };
}

export function usageGroupToWire(row: UsageSummaryRow): UsageGroupWire {
  return {
    group: row.group,
    requests: row.requests,
    prompt_tokens: row.promptTokens,
    cached_tokens: row.cachedTokens,
    completion_tokens: row.completionTokens,
    cost_micros: row.costMicros,
    cost_usd: microsToUsd(row.costMicros),
  };
}

export function usageRecordToWire(record: UsageRecord): UsageRecordWire {
  return {
    id: record.id,
    created_at: record.createdAt,
    account_id: record.accountId,
    key_id: record.keyId,
    model: record.model,
    endpoint: record.endpoint,
    status: record.status,
    prompt_tokens: record.promptTokens,
    cached_tokens: record.cachedTokens,
    cache_write_tokens: record.cacheWriteTokens ?? 0,
    completion_tokens: record.completionTokens,
    cost_micros: record.costMicros,
    cost_usd: microsToUsd(record.costMicros),
    latency_ms: record.latencyMs,
    ttft_ms: record.ttftMs,
    batch_id: record.batchId,
  };
}

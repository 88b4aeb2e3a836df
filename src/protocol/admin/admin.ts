import { z } from 'zod';

/** Tokenmill's admin API and usage API: request schemas and response shapes (times in unix seconds). */

const usd = z.number().finite().min(-1e9).max(1e9);

const accountLimitFields = {
  rpm: z.number().int().min(1).nullish(),
  tpm: z.number().int().min(1).nullish(),
  max_concurrency: z.number().int().min(1).nullish(),
};

export const createAccountSchema = z.object({
  name: z.string().min(1).max(200),
  credits_usd: usd.min(0).default(0),
  ...accountLimitFields,
});

/** PATCH /v1/admin/accounts/{id}: the account-wide limits (null or absent = unlimited). */
export const accountLimitsSchema = z.object(accountLimitFields);

export const addCreditsSchema = z.object({
  amount_usd: usd,
  note: z.string().max(1000).nullish(),
});

export const createKeySchema = z.object({
  name: z.string().min(1).max(200),
  models: z.array(z.string().min(1)).nullish(),
  rpm: z.number().int().min(1).nullish(),
  tpm: z.number().int().min(1).nullish(),
  max_concurrency: z.number().int().min(1).nullish(),
  spend_limit_usd: usd.min(0).nullish(),
  expires_at: z.number().int().min(0).nullish(),
});

export const usageQuerySchema = z.object({
  start: z.coerce.number().int().min(0).optional(),
  end: z.coerce.number().int().min(0).optional(),
  group_by: z.enum(['model', 'key', 'day']).default('model'),
  account_id: z.string().optional(),
});

export const usageRequestsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().optional(),
  account_id: z.string().optional(),
});

export interface AccountWire {
  id: string;
  object: 'account';
  name: string;
  status: string;
  balance_micros: number;
  balance_usd: number;
  created_at: number;
  /** Limits shared by every key of the account; null = unlimited. */
  rpm: number | null;
  tpm: number | null;
  max_concurrency: number | null;
}

export interface ApiKeyWire {
  id: string;
  object: 'api_key';
  account_id: string;
  name: string;
  /** The first characters of the secret, for recognising it. */
  prefix: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  max_concurrency: number | null;
  spend_limit_micros: number | null;
  spent_micros: number;
  /** The secret: only in the response that created the key. */
  key?: string;
}

export interface UsageGroupWire {
  group: string;
  requests: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  cost_usd: number;
}

export interface UsageRecordWire {
  id: string;
  created_at: number;
  account_id: string;
  key_id: string | null;
  model: string;
  endpoint: string;
  status: string;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  /** Prompt tokens written to the prompt cache (Anthropic's cache writes), billed at the model's cache_write price. */
  cache_write_tokens: number;
  cost_micros: number;
  cost_usd: number;
  latency_ms: number;
  ttft_ms: number | null;
  batch_id: string | null;
}

import { z } from 'zod';

/** Endpoints a batch may target. */
export const batchEndpointSchema = z.enum(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']);
export type BatchEndpoint = z.infer<typeof batchEndpointSchema>;

export const createBatchRequestSchema = z.object({
  input_file_id: z.string().min(1),
  endpoint: batchEndpointSchema,
  completion_window: z.literal('24h'),
  /** Up to 16 string pairs, as OpenAI allows. */
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((value) => Object.keys(value).length <= 16, 'metadata may hold at most 16 keys')
    .nullish(),
});
export type CreateBatchRequest = z.infer<typeof createBatchRequestSchema>;

export const batchListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().min(1).optional(),
});

/** One line of a batch input file. Unknown fields are ignored; `body` is checked per line when it runs. */
export const batchInputLineSchema = z.object({
  custom_id: z.string().min(1).max(512),
  method: z.literal('POST'),
  url: z.string(),
  body: z.record(z.string(), z.unknown()).refine((body) => !Array.isArray(body), 'body must be a JSON object'),
});

export interface BatchErrorWire {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  errors: { object: 'list'; data: BatchErrorWire[] } | null;
  input_file_id: string;
  completion_window: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
}

/** A line of a batch's output or error file. */
export interface BatchOutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

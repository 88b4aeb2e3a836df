import { z } from 'zod';

/** Purposes a file may be uploaded for (Tokenmill uses `batch`; the others are stored as OpenAI does). */
export const filePurposeSchema = z.enum(['batch', 'fine-tune', 'assistants', 'vision', 'user_data', 'evals']);

/** Multipart fields of `POST /v1/files` other than the file itself. */
export const fileUploadFieldsSchema = z.object({ purpose: filePurposeSchema });

export const fileListQuerySchema = z.object({
  purpose: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  after: z.string().min(1).optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: string;
  status: 'processed';
  status_details: null;
}

export interface FileDeleted {
  id: string;
  object: 'file';
  deleted: boolean;
}

import type { FileStore, StoredFile } from '../../store/batch-store.js';
import { TokenmillError } from '../errors.js';

/** Who owns files and batches: an account id, or '' when accounts are disabled. */
export type Owner = string;

function fileNotFound(id: string): TokenmillError {
  return new TokenmillError('not_found', 'file_not_found', `No such File object: ${id}`, { param: 'file_id' });
}

/** Uploaded files, scoped to their owner: another account's file is answered as not found. */
export class FileService {
  constructor(
    private readonly store: FileStore,
    /** Largest file, bytes. */
    private readonly maxBytes: number,
    /** Unix seconds. */
    private readonly nowSeconds: () => number,
  ) {}

  async upload(owner: Owner, input: { purpose: string; filename: string; content: Buffer }): Promise<StoredFile> {
    if (input.content.length > this.maxBytes) throw fileTooLarge(this.maxBytes);
    return this.store.createFile({ accountId: owner, ...input, now: this.nowSeconds() });
  }

  async get(owner: Owner, id: string): Promise<StoredFile> {
    return (await this.store.getFile(owner, id)) ?? Promise.reject(fileNotFound(id));
  }

  async content(owner: Owner, id: string): Promise<{ file: StoredFile; content: Buffer }> {
    const file = await this.get(owner, id);
    const content = await this.store.getFileContent(owner, id);
    if (content === null) throw fileNotFound(id);
    return { file, content };
  }

  list(owner: Owner, query: { purpose: string | null; limit: number; after: string | null; order: 'asc' | 'desc' }): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    return this.store.listFiles({ accountId: owner, ...query });
  }

  async delete(owner: Owner, id: string): Promise<void> {
    if (!(await this.store.deleteFile(owner, id))) throw fileNotFound(id);
  }
}

export function fileTooLarge(maxBytes: number): TokenmillError {
  return new TokenmillError('payload_too_large', 'file_too_large', `The file is larger than the ${maxBytes} bytes this server accepts.`, { param: 'file' });
}

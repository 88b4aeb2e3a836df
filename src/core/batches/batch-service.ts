import type { Batch, BatchStore, FileStore } from '../../store/batch-store.js';
import { invalidRequest, TokenmillError } from '../errors.js';
import type { Owner } from '../files/file-service.js';
import { validateBatchInput } from './validate-batch-input.js';

export interface CreateBatchInput {
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** The key whose permissions and funds the lines use; null when accounts are disabled. */
  keyId: string | null;
}

function batchNotFound(id: string): TokenmillError {
  return new TokenmillError('not_found', 'batch_not_found', `No such Batch object: ${id}`, { param: 'batch_id' });
}

/**
 * Creates, reads and cancels batches. The input file is validated when the batch is created: a bad file gives a
 * `failed` batch with its errors by line; a good one gives an `in_progress` batch whose lines the workers run.
 */
export class BatchService {
  constructor(
    private readonly store: BatchStore & FileStore,
    /** The real length of the `24h` window, seconds (config `batches.window_seconds`). */
    private readonly windowSeconds: number,
    /** Unix seconds. */
    private readonly nowSeconds: () => number,
    /** Called when a batch with work was created (wakes the local worker). */
    private readonly onCreated: () => void = () => {},
  ) {}

  async create(owner: Owner, input: CreateBatchInput): Promise<Batch> {
    const file = await this.store.getFile(owner, input.inputFileId);
    if (!file) throw new TokenmillError('not_found', 'file_not_found', `No such File object: ${input.inputFileId}`, { param: 'input_file_id' });
    if (file.purpose !== 'batch') {
      throw invalidRequest(`The file ${file.id} has purpose '${file.purpose}'; a batch input file must have purpose 'batch'.`, 'input_file_id');
    }
    const content = await this.store.getFileContent(owner, file.id);
    const { lines, errors } = validateBatchInput(content ?? Buffer.alloc(0), input.endpoint);
    const now = this.nowSeconds();
    const batch = await this.store.createBatch({
      accountId: owner,
      keyId: input.keyId,
      endpoint: input.endpoint,
      inputFileId: file.id,
      completionWindow: input.completionWindow,
      metadata: input.metadata,
      now,
      expiresAt: now + this.windowSeconds,
      lines,
      errors,
    });
    if (batch.status === 'in_progress') this.onCreated();
    return batch;
  }

  async get(owner: Owner, id: string): Promise<Batch> {
    return (await this.store.getBatch(owner, id)) ?? Promise.reject(batchNotFound(id));
  }

  list(owner: Owner, query: { limit: number; after: string | null }): Promise<{ batches: Batch[]; hasMore: boolean }> {
    return this.store.listBatches({ accountId: owner, ...query });
  }

  /** New lines stop at once; running ones are aborted by their workers within a poll interval. */
  async cancel(owner: Owner, id: string): Promise<Batch> {
    const batch = await this.store.cancelBatch(owner, id, this.nowSeconds());
    if (!batch) throw batchNotFound(id);
    if (['completed', 'failed', 'expired'].includes(batch.status)) {
      throw new TokenmillError('invalid_request', 'batch_not_cancellable', `Cannot cancel a batch with status '${batch.status}'.`, { param: 'batch_id' });
    }
    return batch;
  }
}

import type { Kysely, Selectable } from 'kysely';
import type { StoredFile } from '../batch-store.js';
import type { FilesTable, Tables } from '../tables.js';
import { newId } from '../new-id.js';
import { assertSafeInteger, toSafeInteger } from '../to-safe-integer.js';

type FileRow = Omit<Selectable<FilesTable>, 'content'>;

const METADATA = ['id', 'account_id', 'purpose', 'filename', 'bytes', 'created_at'] as const;

function rowToFile(row: FileRow): StoredFile {
  return {
    id: row.id,
    accountId: row.account_id,
    purpose: row.purpose,
    filename: row.filename,
    bytes: toSafeInteger(row.bytes),
    createdAt: toSafeInteger(row.created_at),
  };
}

/** Uploaded and generated files, content in a blob column; every query is scoped to the owning account. */
export class FilesRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  async create(input: { accountId: string; purpose: string; filename: string; content: Buffer; now: number }): Promise<StoredFile> {
    const row = { id: newId('file'), account_id: input.accountId, purpose: input.purpose, filename: input.filename, bytes: input.content.length, created_at: input.now };
    await this.db.insertInto('files').values({ ...row, content: input.content }).execute();
    return rowToFile(row);
  }

  async get(accountId: string, id: string): Promise<StoredFile | null> {
    const row = await this.db.selectFrom('files').select(METADATA).where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    return row ? rowToFile(row) : null;
  }

  async content(accountId: string, id: string): Promise<Buffer | null> {
    const row = await this.db.selectFrom('files').select('content').where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    return row ? Buffer.from(row.content) : null;
  }

  /** Keyset pagination on (created_at, id) in the requested order; an unknown `after` gives an empty page. */
  async list(query: { accountId: string; purpose: string | null; limit: number; after: string | null; order: 'asc' | 'desc' }): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    assertSafeInteger(query.limit, 'limit');
    let select = this.db.selectFrom('files').select(METADATA).where('account_id', '=', query.accountId);
    if (query.purpose !== null) select = select.where('purpose', '=', query.purpose);
    if (query.after !== null) {
      const after = query.after;
      const cursor = await this.db.selectFrom('files').select('created_at').where('id', '=', after).where('account_id', '=', query.accountId).executeTakeFirst();
      if (!cursor) return { files: [], hasMore: false };
      const createdAt = toSafeInteger(cursor.created_at);
      const beyond = query.order === 'desc' ? '<' : '>';
      select = select.where((eb) => eb.or([eb('created_at', beyond, createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', beyond, after)])]));
    }
    const rows = await select.orderBy('created_at', query.order).orderBy('id', query.order).limit(query.limit + 1).execute();
    return { files: rows.slice(0, query.limit).map(rowToFile), hasMore: rows.length > query.limit };
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('files').where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}

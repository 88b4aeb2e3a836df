import type OpenAI from 'openai';
import { STORIES } from './test-server.js';

export type BatchLine = { custom_id: string; method: string; url: string; body: Record<string, unknown> };

/** A short chat request line for `/v1/chat/completions` on the tiny stories model. */
export function chatLine(customId: string, body: Record<string, unknown> = {}): BatchLine {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: STORIES, messages: [{ role: 'user', content: `Tell a story number ${customId}` }], max_tokens: 4, ...body },
  };
}

/** JSONL text: objects are serialized, strings sent as they are (for malformed lines). */
export function jsonl(lines: unknown[]): string {
  return `${lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n')}\n`;
}

/** Polls a batch until it reaches one of `statuses`. */
export async function waitFor(client: OpenAI, id: string, statuses: string[], timeoutMs = 30_000): Promise<OpenAI.Batches.Batch> {
  const until = Date.now() + timeoutMs;
  while (true) {
    const batch = await client.batches.retrieve(id);
    if (statuses.includes(batch.status)) return batch;
    if (Date.now() > until) throw new Error(`batch ${id} still ${batch.status} (${JSON.stringify(batch.request_counts)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The parsed lines of an output or error file (none when there is no file). */
export async function readLines(client: OpenAI, fileId: string | null | undefined): Promise<any[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line));
}

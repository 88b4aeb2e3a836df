import type { BatchError } from '../../store/batch-store.js';
import { batchInputLineSchema } from '../../protocol/openai/batches.js';

/** OpenAI's limit of requests in one batch. */
export const MAX_BATCH_LINES = 50_000;
/** Validation errors reported at most (the rest are counted in the last one's message). */
const MAX_REPORTED_ERRORS = 100;

export interface ValidatedInput {
  lines: Array<{ customId: string; body: string }>;
  /** Null when the file is valid. */
  errors: BatchError[] | null;
}

/**
 * Checks a batch input file as OpenAI does: every line JSON with a unique `custom_id`, `method` POST, `url` equal to
 * the batch's endpoint and an object `body`. Errors name their 1-based line; a file with any error runs no line.
 * What is inside `body` is checked when each line runs (its error goes to the error file).
 */
export function validateBatchInput(content: Buffer, endpoint: string): ValidatedInput {
  const errors: BatchError[] = [];
  const lines: ValidatedInput['lines'] = [];
  const seen = new Set<string>();
  const report = (code: string, message: string, line: number | null, param: string | null = null) => {
    if (errors.length < MAX_REPORTED_ERRORS) errors.push({ code, message, param, line });
  };
  const texts = content.toString('utf8').split('\n');
  texts.forEach((raw, index) => {
    const text = raw.trim();
    const line = index + 1;
    if (text.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      report('invalid_json_line', 'This line is not parseable as valid JSON.', line);
      return;
    }
    const parsed = batchInputLineSchema.safeParse(value, { reportInput: true });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue.path.map(String).join('.') || null;
      if (param === 'method') report('invalid_method', "The 'method' of every line must be 'POST'.", line, 'method');
      else if (issue.code === 'invalid_type' && issue.input === undefined) report('missing_required_parameter', `Missing required parameter: '${param}'.`, line, param);
      else report('invalid_request', `Invalid value for '${param ?? 'line'}': ${issue.message}`, line, param);
      return;
    }
    const { custom_id: customId, url, body } = parsed.data;
    if (url !== endpoint) {
      report('mismatched_url', `The url '${url}' does not match the batch's endpoint '${endpoint}'.`, line, 'url');
      return;
    }
    if (seen.has(customId)) {
      report('duplicate_custom_id', `The custom_id '${customId}' appears more than once; custom_id values must be unique within a batch.`, line, 'custom_id');
      return;
    }
    seen.add(customId);
    lines.push({ customId, body: JSON.stringify(body) });
  });
  if (errors.length === 0 && lines.length === 0) report('empty_file', 'The input file holds no requests.', null);
  if (lines.length > MAX_BATCH_LINES) report('too_many_tasks', `A batch may hold at most ${MAX_BATCH_LINES} requests; this file holds ${lines.length}.`, null);
  return errors.length > 0 ? { lines: [], errors } : { lines, errors: null };
}

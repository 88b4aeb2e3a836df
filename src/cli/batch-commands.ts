import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import type { BatchObject } from '../protocol/openai/batches.js';
import { CliError } from './admin-client.js';
import { ApiClient } from './api-client.js';

interface ConnectionOptions {
  url: string;
  apiKey?: string;
}

/** Statuses after which a batch changes no more. */
const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

function connected(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'server address').env('TOKENMILL_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--api-key <key>', 'API key (not needed when the server runs with TOKENMILL_AUTH=off)').env('TOKENMILL_API_KEY'));
}

function client(options: ConnectionOptions): ApiClient {
  return new ApiClient(options.url, options.apiKey);
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('not a positive integer');
  return parsed;
}

function metadataPair(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('expected KEY=VALUE');
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** Writes the batch's output and error files into `directory`; returns the paths written. */
async function downloadResults(api: ApiClient, batch: BatchObject, directory: string): Promise<{ output: string | null; errors: string | null }> {
  const save = async (fileId: string | null, suffix: string) => {
    if (!fileId) return null;
    const target = path.join(directory, `${batch.id}_${suffix}.jsonl`);
    await writeFile(target, await api.download(fileId));
    return target;
  };
  return { output: await save(batch.output_file_id, 'output'), errors: await save(batch.error_file_id, 'errors') };
}

/** Polls until the batch is final, drawing a progress bar of answered lines on stderr. */
async function waitForBatch(api: ApiClient, id: string, intervalMs: number): Promise<BatchObject> {
  const bar = new cliProgress.SingleBar(
    {
      format: 'batch {id} [{bar}] {value}/{total} lines | {status} | failed {failed} | {duration_formatted}',
      stream: process.stderr,
      hideCursor: false,
      // Without a terminal (CI logs, pipes), print a line per poll instead of redrawing.
      noTTYOutput: true,
      notTTYSchedule: intervalMs,
    },
    cliProgress.Presets.shades_classic,
  );
  let batch = await api.call<BatchObject>('GET', `/v1/batches/${encodeURIComponent(id)}`);
  const counts = () => ({ id, status: batch.status, failed: batch.request_counts.failed });
  bar.start(batch.request_counts.total, 0, counts());
  try {
    while (!FINAL.has(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      batch = await api.call<BatchObject>('GET', `/v1/batches/${encodeURIComponent(id)}`);
      bar.setTotal(batch.request_counts.total);
      bar.update(batch.request_counts.completed + batch.request_counts.failed, counts());
    }
  } finally {
    bar.stop();
  }
  return batch;
}

/** `tokenmill batches create|list|get|cancel|results`: the Batch API from the command line, with a user's API key. */
export function addBatchCommands(program: Command): void {
  const batches = program.command('batches').description('Run JSONL files of requests as batches (Files and Batch APIs)');

  connected(batches.command('create <file>').description('Upload a JSONL file of requests and start a batch'))
    .addOption(new Option('--endpoint <path>', 'endpoint of every line').choices(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']).default('/v1/chat/completions'))
    .option('--metadata <key=value>', 'metadata pair (repeatable)', metadataPair)
    .option('--wait', 'show progress until the batch ends, then download its results')
    .option('--output-dir <dir>', 'where --wait writes <batch>_output.jsonl and <batch>_errors.jsonl', '.')
    .option('--poll-interval <ms>', 'how often --wait polls, ms', positiveInteger, 1000)
    .action(async (file: string, options: ConnectionOptions & { endpoint: string; metadata?: Record<string, string>; wait?: boolean; outputDir: string; pollInterval: number }) => {
      const api = client(options);
      const uploaded = await api.upload(path.basename(file), await readFile(file), 'batch');
      let batch = await api.call<BatchObject>('POST', '/v1/batches', {
        input_file_id: uploaded.id,
        endpoint: options.endpoint,
        completion_window: '24h',
        metadata: options.metadata ?? null,
      });
      if (options.wait && !FINAL.has(batch.status)) batch = await waitForBatch(api, batch.id, options.pollInterval);
      if (options.wait) {
        const files = await downloadResults(api, batch, options.outputDir);
        print({ ...batch, downloaded: files });
        if (batch.status === 'failed') process.exitCode = 1;
        return;
      }
      print(batch);
    });

  connected(batches.command('list').description('List your batches, newest first'))
    .option('--limit <n>', 'batches per page', positiveInteger, 20)
    .option('--after <id>', 'the last batch id of the previous page')
    .action(async (options: ConnectionOptions & { limit: number; after?: string }) => {
      const query = new URLSearchParams({ limit: String(options.limit), ...(options.after ? { after: options.after } : {}) });
      print(await client(options).call('GET', `/v1/batches?${query}`));
    });

  connected(batches.command('get <id>').description('Show a batch')).action(async (id: string, options: ConnectionOptions) =>
    print(await client(options).call('GET', `/v1/batches/${encodeURIComponent(id)}`)),
  );

  connected(batches.command('cancel <id>').description('Cancel a batch: no new lines start; it ends within seconds')).action(
    async (id: string, options: ConnectionOptions) => print(await client(options).call('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`)),
  );

  connected(batches.command('results <id>').description("Download a finished batch's output and error files"))
    .option('--output-dir <dir>', 'where to write <batch>_output.jsonl and <batch>_errors.jsonl', '.')
    .action(async (id: string, options: ConnectionOptions & { outputDir: string }) => {
      const api = client(options);
      const batch = await api.call<BatchObject>('GET', `/v1/batches/${encodeURIComponent(id)}`);
      if (!FINAL.has(batch.status)) throw new CliError(`batch ${id} is still ${batch.status}; try again when it has ended`);
      print(await downloadResults(api, batch, options.outputDir));
    });
}

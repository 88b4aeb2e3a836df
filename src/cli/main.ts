import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load-config.js';
import { environmentVariables } from '../config/schema.js';
import { startServer } from '../main.js';
import { InstanceLockedError } from '../store/instance-lock.js';
import { CliError } from './admin-client.js';
import { addAdminCommands } from './admin-commands.js';
import { addBatchCommands } from './batch-commands.js';

function integer(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number)) throw new InvalidArgumentError('not an integer');
  return number;
}

/** Secrets made at the first start are shown once, on stdout, never through the logger. */
function printSecrets(secrets: { adminKey: string | null; demoKey: string | null; demoAccountId: string | null }, url: string): void {
  const lines: string[] = [];
  if (secrets.adminKey) lines.push(`Admin key (shown once; set TOKENMILL_ADMIN_KEY to choose your own): ${secrets.adminKey}`);
  if (secrets.demoKey) {
    lines.push(`Demo account ${secrets.demoAccountId} with a demo API key (shown once): ${secrets.demoKey}`);
    lines.push(`Try: curl ${url}/v1/chat/completions -H "Authorization: Bearer ${secrets.demoKey}" \\`);
    lines.push(`       -H 'content-type: application/json' -d '{"model":"stories-260k","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}'`);
  }
  if (lines.length > 0) process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

export function buildCli(): Command {
  const program = new Command();
  program.name('tokenmill').description('An inference provider in a box: OpenAI-compatible API over llama.cpp.');

  program
    .command('serve')
    .description('Run the API server')
    .addOption(new Option('-c, --config <path>', 'YAML model catalog').env('TOKENMILL_CONFIG'))
    .option('-m, --model <path>', 'serve this one GGUF file, no catalog needed')
    .option('-p, --port <port>', 'port to listen on (env PORT)', integer)
    .option('--host <host>', 'address to listen on (env HOST)')
    .option('-t, --threads <n>', 'llama.cpp threads for every model', integer)
    .option('-s, --sequences <n>', 'parallel sequences for every model', integer)
    .option('--context-size <n>', 'context tokens per sequence for every model', integer)
    .addHelpText(
      'after',
      `\nEnvironment variables:\n${Object.entries(environmentVariables)
        .map(([name, doc]) => `  ${name.padEnd(32)} ${doc}`)
        .join('\n')}\n`,
    )
    .action(async (options: { config?: string; model?: string; port?: number; host?: string; threads?: number; sequences?: number; contextSize?: number }) => {
      let config;
      try {
        config = loadConfig({
          configPath: options.config,
          modelPath: options.model,
          env: process.env,
          overrides: {
            port: options.port,
            host: options.host,
            threads: options.threads,
            sequences: options.sequences,
            contextSize: options.contextSize,
          },
        });
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          process.exit(2);
        }
        throw error;
      }
      let server;
      try {
        server = await startServer(config);
      } catch (error) {
        if (error instanceof InstanceLockedError) {
          process.stderr.write(`tokenmill: ${error.message}\n`);
          process.exit(1);
        }
        throw error;
      }
      // A failure that escapes a request (e.g. inside node-llama-cpp's sampler) must not take every other request
      // down with the process: log it; the request it belonged to still ends at its deadline.
      process.on('unhandledRejection', (reason) => server.app.log.error({ err: reason }, 'unhandled rejection'));
      printSecrets(server.secrets, server.url);
      const stop = (signal: string) => {
        server.app.log.info({ signal }, 'shutting down');
        server.shutdown().then(
          () => process.exit(0),
          (error) => {
            server.app.log.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  addAdminCommands(program);
  addBatchCommands(program);
  return program;
}

try {
  await buildCli().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError || error instanceof InvalidArgumentError) {
    process.stderr.write(`tokenmill: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

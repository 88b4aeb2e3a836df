import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';

function writeConfig(text: string): string {
  const directory = mkdtempSync(path.join(tmpdir(), 'tokenmill-config-'));
  const file = path.join(directory, 'catalog.yaml');
  writeFileSync(file, text);
  return file;
}

test('the bundled catalog loads with its documented keys', () => {
  const config = loadConfig({ env: {} });
  const stories = config.models.find((model) => model.id === 'stories-260k');
  assert.ok(stories);
  assert.equal(stories.sequences, 8);
  assert.equal(stories.threads, 1);
  assert.equal(stories.context_size, 2048);
  assert.ok(stories.prices.input > 0 && stories.prices.output > 0);
  assert.ok(path.isAbsolute(stories.path!));
  assert.ok(Object.isFrozen(config));
});

test('paths are relative to the config file, env and flags override', () => {
  const file = writeConfig('models:\n  - id: m\n    path: weights/m.gguf\n');
  const config = loadConfig({ configPath: file, env: { PORT: '9123' }, overrides: { threads: 3 } });
  assert.equal(config.models[0].path, path.join(path.dirname(file), 'weights/m.gguf'));
  assert.equal(config.server.port, 9123);
  assert.equal(config.models[0].threads, 3);
  assert.equal(config.models[0].max_queue, 64);
});

test('TOKENMILL_CONFIG names the catalog', () => {
  const file = writeConfig('models:\n  - id: from-env\n    path: x.gguf\n');
  assert.equal(loadConfig({ env: { TOKENMILL_CONFIG: file } }).models[0].id, 'from-env');
});

test('--model serves one file without a catalog', () => {
  const config = loadConfig({ modelPath: '/tmp/some-model.gguf', env: {} });
  assert.equal(config.models[0].id, 'some-model');
  assert.equal(config.models[0].path, '/tmp/some-model.gguf');
});

test('bad catalogs are refused with a clear message', () => {
  const cases = [
    'models: []\n',
    'models:\n  - id: a\n',
    'models:\n  - id: a\n    path: a.gguf\n    sequences: 0\n',
    'models:\n  - id: a\n    path: a.gguf\n    unknown_key: 1\n',
    'models:\n  - id: a\n    path: a.gguf\n  - id: a\n    path: b.gguf\n',
    'models: [\n',
    '- just a list\n',
  ];
  for (const text of cases) {
    assert.throws(() => loadConfig({ configPath: writeConfig(text), env: {} }), ConfigError, text);
  }
  assert.throws(() => loadConfig({ configPath: '/nonexistent/file.yaml', env: {} }), ConfigError);
  assert.throws(() => loadConfig({ env: { PORT: 'eighty' } }), ConfigError);
});

test('deployments: upstream keys come from the environment, paths are resolved, bad catalogs are refused', () => {
  const file = writeConfig(
    [
      'models:',
      '  - id: mixed',
      '    prices: {input: 0.2, output: 0.8, cache_write: 0.25}',
      '    deployments:',
      '      - kind: llama',
      '        path: weights/m.gguf',
      '        sequences: 2',
      '      - kind: openai',
      '        base_url: http://127.0.0.1:9000/v1',
      '        model: upstream-id',
      '        api_key_env: UPSTREAM_KEY',
      '        weight: 3',
      '  - id: remote',
      '    tokenizer: mixed',
      '    deployments:',
      '      - {kind: openai, base_url: "https://api.example.com/v1", model: m}',
      '',
    ].join('\n'),
  );
  const config = loadConfig({ configPath: file, env: { UPSTREAM_KEY: 'sk-from-env' } });
  const [llama, upstream] = config.models[0].deployments!;
  assert.equal(llama.kind === 'llama' && llama.path, path.join(path.dirname(file), 'weights/m.gguf'));
  assert.ok(upstream.kind === 'openai');
  assert.equal(upstream.api_key, 'sk-from-env');
  assert.equal(upstream.weight, 3);
  assert.equal(upstream.timeout_ms, 30_000);
  assert.equal(config.models[0].prices.cache_write, 0.25);
  assert.equal(config.models[0].routing.retries, 1);
  const remote = config.models[1].deployments![0];
  assert.ok(remote.kind === 'openai' && remote.api_key === null);
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /UPSTREAM_KEY.*is not set/);
  const refused = [
    'models:\n  - id: a\n    path: a.gguf\n    deployments:\n      - {kind: openai, base_url: "http://x/v1", model: m}\n',
    'models:\n  - id: a\n    deployments:\n      - {kind: llama, path: a.gguf}\n      - {kind: llama, path: b.gguf}\n',
    'models:\n  - id: a\n    deployments:\n      - {kind: openai, base_url: "http://x/v1", model: m, api_key: sk-in-file}\n',
    'models:\n  - id: a\n    deployments:\n      - {kind: openai, base_url: "ftp://x/v1", model: m}\n',
    'models:\n  - id: a\n    deployments:\n      - {kind: anthropic, base_url: "http://x/v1", model: m}\n',
    'models:\n  - id: a\n    tokenizer: nope\n    deployments:\n      - {kind: openai, base_url: "http://x/v1", model: m}\n',
    'models:\n  - id: a\n    deployments: []\n',
  ];
  for (const text of refused) assert.throws(() => loadConfig({ configPath: writeConfig(text), env: {} }), ConfigError, text);
});

test('kind: anthropic deployments: the key from api_key_env, the version and default max_tokens defaulted', () => {
  const file = writeConfig(
    [
      'models:',
      '  - id: claude',
      '    deployments:',
      '      - {kind: anthropic, base_url: "https://api.anthropic.com", model: claude-x, api_key_env: ANTHROPIC_KEY}',
      '      - {kind: anthropic, base_url: "http://127.0.0.1:9000", model: claude-y, anthropic_version: "2024-01-01", default_max_tokens: 512}',
      '',
    ].join('\n'),
  );
  const [first, second] = loadConfig({ configPath: file, env: { ANTHROPIC_KEY: 'sk-ant-env' } }).models[0].deployments!;
  assert.ok(first.kind === 'anthropic' && second.kind === 'anthropic');
  assert.equal(first.api_key, 'sk-ant-env');
  assert.equal(first.anthropic_version, '2023-06-01');
  assert.equal(first.default_max_tokens, 4096);
  assert.equal(second.api_key, null);
  assert.equal(second.anthropic_version, '2024-01-01');
  assert.equal(second.default_max_tokens, 512);
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /ANTHROPIC_KEY.*is not set/);
  assert.throws(
    () => loadConfig({ configPath: writeConfig('models:\n  - id: a\n    deployments:\n      - {kind: anthropic, base_url: "http://x", model: m, api_key: sk-in-file}\n'), env: {} }),
    /api_key_env/,
  );
});

test('batch and file settings: defaults, file, environment', () => {
  const defaults = loadConfig({ env: {} });
  assert.deepEqual(defaults.batches, { window_seconds: 86_400, concurrency: 64, poll_interval_ms: 500, lease_ms: 30_000, discount: 0.5, lines_beside_interactive: 1 });
  assert.equal(defaults.files.max_bytes, 100 * 1024 * 1024);
  const file = writeConfig('batches:\n  window_seconds: 60\n  discount: 0.25\nmodels:\n  - id: m\n    path: m.gguf\n');
  const config = loadConfig({ configPath: file, env: { TOKENMILL_BATCH_WINDOW_SECONDS: '5', TOKENMILL_BATCH_LEASE_MS: '1000', TOKENMILL_FILES_MAX_BYTES: '2048' } });
  assert.equal(config.batches.window_seconds, 5, 'the environment overrides the file');
  assert.equal(config.batches.discount, 0.25);
  assert.equal(config.batches.lease_ms, 1000);
  assert.equal(config.files.max_bytes, 2048);
  assert.throws(() => loadConfig({ configPath: file, env: { TOKENMILL_BATCH_CONCURRENCY: 'many' } }), ConfigError);
  assert.throws(() => loadConfig({ configPath: file, env: { TOKENMILL_BATCH_DISCOUNT: '2' } }), ConfigError);
});

test('thread split and flash attention: defaults, explicit values, and bad values', () => {
  const defaults = loadConfig({ configPath: writeConfig('models:\n  - id: m\n    path: m.gguf\n'), env: {} }).models[0];
  assert.equal(defaults.batch_threads, 'auto');
  assert.equal(defaults.batch_threads_min_tokens, null);
  assert.equal(defaults.flash_attention, 'auto');
  const explicit = loadConfig({
    configPath: writeConfig('models:\n  - id: m\n    path: m.gguf\n    batch_threads: null\n    batch_threads_min_tokens: 16\n    flash_attention: false\n'),
    env: {},
  }).models[0];
  assert.equal(explicit.batch_threads, null);
  assert.equal(explicit.batch_threads_min_tokens, 16);
  assert.equal(explicit.flash_attention, false);
  const bundled = loadConfig({ env: {} }).models.find((model) => model.id === 'stories-260k');
  assert.equal(bundled?.flash_attention, false);
  for (const bad of ['batch_threads: many', 'batch_threads: 0', 'batch_threads_min_tokens: 0', 'flash_attention: sometimes']) {
    assert.throws(() => loadConfig({ configPath: writeConfig(`models:\n  - id: m\n    path: m.gguf\n    ${bad}\n`), env: {} }), ConfigError, bad);
  }
});

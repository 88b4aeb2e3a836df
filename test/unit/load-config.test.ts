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
  assert.ok(path.isAbsolute(stories.path));
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

test('batch and file settings: defaults, file, environment', () => {
  const defaults = loadConfig({ env: {} });
  assert.deepEqual(defaults.batches, { window_seconds: 86_400, concurrency: 64, poll_interval_ms: 500, lease_ms: 30_000, discount: 0.5 });
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

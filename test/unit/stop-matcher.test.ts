import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopMatcher } from '../../src/engine/llama/stop-matcher.js';

function run(stops: string[], pieces: string[]): { text: string; stopped: boolean } {
  const matcher = new StopMatcher(stops);
  let text = '';
  for (const piece of pieces) {
    const result = matcher.push(piece);
    text += result.emit;
    if (result.stopped) return { text, stopped: true };
  }
  return { text: text + matcher.flush(), stopped: false };
}

test('no stops: text passes through at once', () => {
  const matcher = new StopMatcher([]);
  assert.deepEqual(matcher.push('abc'), { emit: 'abc', stopped: false });
});

test('a stop inside one piece cuts the text before it', () => {
  assert.deepEqual(run(['END'], ['hello END world']), { text: 'hello ', stopped: true });
});

test('a stop split across pieces is found and never emitted', () => {
  const matcher = new StopMatcher(['</s>']);
  assert.deepEqual(matcher.push('a <'), { emit: 'a ', stopped: false });
  assert.deepEqual(matcher.push('/'), { emit: '', stopped: false });
  assert.deepEqual(matcher.push('s> b'), { emit: '', stopped: true, matched: '</s>' });
});

test('held text that turns out not to be a stop is released', () => {
  assert.deepEqual(run(['STOP'], ['ST', 'ART']), { text: 'START', stopped: false });
});

test('the earliest of several stops wins', () => {
  assert.deepEqual(run(['b', 'a'], ['xxab']), { text: 'xx', stopped: true });
});

test('held text is flushed at the end of generation', () => {
  assert.deepEqual(run(['STOP'], ['the ST']), { text: 'the ST', stopped: false });
});

test('matched names the stop that ended the text: the earliest in it, not the first listed', () => {
  assert.equal(new StopMatcher(['b', 'a']).push('xxab').matched, 'a');
  assert.equal(new StopMatcher(['b', 'a']).push('xx').matched, undefined);
});

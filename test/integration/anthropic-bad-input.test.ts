import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/**
 * Malformed requests to /v1/messages and /v1/messages/count_tokens, from a table (as bad-input.test.ts does for the
 * OpenAI routes): every answer has Anthropic's error shape, status and type, and names the field in its message.
 */
/** One malformed Anthropic request and what the server must answer. */
interface BadMessagesCase {
  name: string;
  /** Default: /v1/messages. */
  path?: string;
  /** A string is sent as is. */
  body?: unknown;
  status: number;
  /** Anthropic's error type. */
  type: string;
  /** A text the message must hold (the field's name, as Anthropic leads its messages with it). */
  mentions?: string;
}

describe('bad input to /v1/messages, as a table', () => {
  const MESSAGES = '/v1/messages';
  const COUNT = '/v1/messages/count_tokens';
  const base = (fields: Record<string, unknown>) => ({ model: STORIES, max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }], ...fields });
  const user = (content: unknown) => base({ messages: [{ role: 'user', content }] });
  const withoutField = (field: string) => {
    const body: Record<string, unknown> = base({});
    delete body[field];
    return body;
  };
  const tool = { name: 'f', input_schema: { type: 'object' } };

  const cases: BadMessagesCase[] = [
    { name: 'malformed JSON', body: '{"model": ', status: 400, type: 'invalid_request_error' },
    { name: 'empty body', body: '', status: 400, type: 'invalid_request_error' },
    { name: 'body is an array', body: '[]', status: 400, type: 'invalid_request_error' },
    { name: 'body over the size limit', body: JSON.stringify(base({ padding: 'x'.repeat(5 * 1024 * 1024) })), status: 413, type: 'request_too_large' },
    { name: 'missing model', body: withoutField('model'), status: 400, type: 'invalid_request_error', mentions: 'model' },
    { name: 'missing max_tokens', body: withoutField('max_tokens'), status: 400, type: 'invalid_request_error', mentions: 'max_tokens' },
    { name: 'max_tokens -1', body: base({ max_tokens: -1 }), status: 400, type: 'invalid_request_error', mentions: 'max_tokens' },
    { name: 'max_tokens a string', body: base({ max_tokens: 'ten' }), status: 400, type: 'invalid_request_error', mentions: 'max_tokens' },
    { name: 'missing messages', body: withoutField('messages'), status: 400, type: 'invalid_request_error', mentions: 'messages' },
    { name: 'messages empty', body: base({ messages: [] }), status: 400, type: 'invalid_request_error', mentions: 'messages' },
    { name: 'role system in messages', body: base({ messages: [{ role: 'system', content: 'Hi' }] }), status: 400, type: 'invalid_request_error', mentions: 'messages[0].role' },
    { name: 'content a number', body: user(42), status: 400, type: 'invalid_request_error', mentions: 'messages[0].content' },
    { name: 'block of an unknown type', body: user([{ type: 'hologram' }]), status: 400, type: 'invalid_request_error', mentions: 'messages[0].content[0].type' },
    { name: 'text block without text', body: user([{ type: 'text' }]), status: 400, type: 'invalid_request_error', mentions: 'messages[0].content[0].text' },
    {
      name: 'image block (unsupported)',
      body: user([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }]),
      status: 400,
      type: 'invalid_request_error',
      mentions: 'messages[0].content[0].type',
    },
    { name: 'tool_use in a user message', body: user([{ type: 'tool_use', id: 't', name: 'f', input: {} }]), status: 400, type: 'invalid_request_error', mentions: 'messages[0].content[0].type' },
    {
      name: 'tool_result in an assistant message',
      body: base({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 't', content: 'x' }] }] }),
      status: 400,
      type: 'invalid_request_error',
      mentions: 'messages[1].content[0].type',
    },
    { name: 'tool_use input not an object', body: base({ messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: 'x' }] }] }), status: 400, type: 'invalid_request_error', mentions: 'messages[0].content[0].input' },
    { name: 'cache_control with a ttl of a day', body: user([{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral', ttl: '1d' } }]), status: 400, type: 'invalid_request_error', mentions: 'cache_control.ttl' },
    { name: 'cache_control of another type', body: user([{ type: 'text', text: 'Hi', cache_control: { type: 'forever' } }]), status: 400, type: 'invalid_request_error', mentions: 'cache_control' },
    { name: 'system a number', body: base({ system: 7 }), status: 400, type: 'invalid_request_error', mentions: 'system' },
    { name: 'temperature 1.5 (Anthropic allows 0..1)', body: base({ temperature: 1.5 }), status: 400, type: 'invalid_request_error', mentions: 'temperature' },
    { name: 'top_p 2', body: base({ top_p: 2 }), status: 400, type: 'invalid_request_error', mentions: 'top_p' },
    { name: 'top_k -1', body: base({ top_k: -1 }), status: 400, type: 'invalid_request_error', mentions: 'top_k' },
    { name: 'stop_sequences a string', body: base({ stop_sequences: 'END' }), status: 400, type: 'invalid_request_error', mentions: 'stop_sequences' },
    { name: 'stop_sequences with an empty string', body: base({ stop_sequences: ['a', ''] }), status: 400, type: 'invalid_request_error', mentions: 'stop_sequences[1]' },
    { name: 'stream a string', body: base({ stream: 'yes' }), status: 400, type: 'invalid_request_error', mentions: 'stream' },
    { name: 'tool without input_schema', body: base({ tools: [{ name: 'f' }] }), status: 400, type: 'invalid_request_error', mentions: 'tools[0].input_schema' },
    { name: 'tool with a bad name', body: base({ tools: [{ ...tool, name: 'no spaces' }] }), status: 400, type: 'invalid_request_error', mentions: 'tools[0].name' },
    { name: 'two tools of one name', body: base({ tools: [tool, tool] }), status: 400, type: 'invalid_request_error', mentions: 'tools[1].name' },
    { name: 'a server tool', body: base({ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }), status: 400, type: 'invalid_request_error', mentions: 'tools[0]' },
    { name: 'tool_choice any without tools', body: base({ tool_choice: { type: 'any' } }), status: 400, type: 'invalid_request_error', mentions: 'tool_choice' },
    { name: 'tool_choice of an unknown tool', body: base({ tools: [tool], tool_choice: { type: 'tool', name: 'g' } }), status: 400, type: 'invalid_request_error', mentions: 'tool_choice.name' },
    { name: 'tool_choice of an unknown type', body: base({ tools: [tool], tool_choice: { type: 'sometimes' } }), status: 400, type: 'invalid_request_error', mentions: 'tool_choice' },
    { name: 'prompt longer than the context', body: user('word '.repeat(3000)), status: 400, type: 'invalid_request_error', mentions: 'context length' },
    { name: 'max_tokens beyond the context', body: base({ max_tokens: 100_000 }), status: 400, type: 'invalid_request_error', mentions: 'max_tokens' },
    { name: 'unknown model', body: base({ model: 'claude-nope' }), status: 404, type: 'not_found_error', mentions: 'claude-nope' },
    { name: 'unknown model, streamed', body: base({ model: 'claude-nope', stream: true }), status: 404, type: 'not_found_error' },
    { name: 'count_tokens: unknown model', path: COUNT, body: { model: 'claude-nope', messages: [{ role: 'user', content: 'Hi' }] }, status: 404, type: 'not_found_error' },
    { name: 'count_tokens: missing messages', path: COUNT, body: { model: STORIES }, status: 400, type: 'invalid_request_error', mentions: 'messages' },
    { name: 'unknown route under /v1/messages', path: '/v1/messages/nonsense', body: base({}), status: 404, type: 'not_found_error' },
  ];

  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  for (const entry of cases) {
    test(entry.name, async () => {
      const response = await rawRequest(server.url, 'POST', entry.path ?? MESSAGES, entry.body);
      assert.equal(response.status, entry.status, JSON.stringify(response.body));
      assert.equal(response.body.type, 'error', JSON.stringify(response.body));
      assert.equal(response.body.error.type, entry.type, JSON.stringify(response.body));
      assert.equal(typeof response.body.error.message, 'string');
      if (entry.mentions) assert.ok(response.body.error.message.includes(entry.mentions), response.body.error.message);
      assert.equal(response.body.request_id, response.headers.get('request-id'));
    });
  }
});

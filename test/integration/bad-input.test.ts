import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, STORIES, type TestServer } from '../helpers/test-server.js';
import { rawRequest } from './raw-request.js';

/** One malformed request and what the server must answer. */
interface BadRequestCase {
  name: string;
  method?: 'GET' | 'POST';
  /** Default: /v1/chat/completions. */
  path?: string;
  /** A string is sent as is; a function builds the body once the server runs. */
  body?: unknown | (() => unknown);
  status: number;
  /** Expected error.code; undefined: not checked. */
  code?: string | null;
  /** Expected error.param; undefined: not checked. */
  param?: string | null;
  /** Set while a known bug makes the case fail; node:test reports it without failing the suite. */
  todo?: string;
}

const CHAT = '/v1/chat/completions';
const COMPLETIONS = '/v1/completions';
const EMBEDDINGS = '/v1/embeddings';
const CONTEXT_SIZE = 2048;

const messages = [{ role: 'user', content: 'Hi' }];
const chat = (fields: Record<string, unknown>) => ({ model: STORIES, messages, max_tokens: 2, ...fields });
const completion = (fields: Record<string, unknown>) => ({ model: STORIES, prompt: 'Hi', max_tokens: 2, ...fields });
const embedding = (fields: Record<string, unknown>) => ({ model: STORIES, input: 'Hi', ...fields });
const withoutField = (body: Record<string, unknown>, field: string) => {
  const copy = { ...body };
  delete copy[field];
  return copy;
};

let server: TestServer;
/** Text of more tokens than stories-260k's context, measured with /tokenize. */
let tooLongText = '';

const cases: BadRequestCase[] = [
  // The body itself.
  { name: 'malformed JSON', body: '{"model": "stories-260k", "messages": [', status: 400, code: 'invalid_json', param: null },
  { name: 'empty body', body: '', status: 400, code: 'invalid_json', param: null },
  { name: 'no body at all', body: undefined, status: 400, code: 'invalid_json', param: null },
  { name: 'body is an array', body: '[]', status: 400, code: 'invalid_json', param: null },
  { name: 'body is a string', body: '"hello"', status: 400, code: 'invalid_json', param: null },
  { name: 'body is null', body: 'null', status: 400, code: 'invalid_json', param: null },
  { name: 'body is a number', body: '42', status: 400, code: 'invalid_json', param: null },
  {
    name: 'body over the size limit (5 MiB)',
    body: () => JSON.stringify(chat({ padding: 'x'.repeat(5 * 1024 * 1024) })),
    status: 413,
    code: 'request_too_large',
  },

  // Chat: model and messages.
  { name: 'missing model', body: withoutField(chat({}), 'model'), status: 400, code: 'missing_required_parameter', param: 'model' },
  { name: 'model empty', body: chat({ model: '' }), status: 400, param: 'model' },
  { name: 'model a number', body: chat({ model: 7 }), status: 400, param: 'model' },
  { name: 'unknown model', body: chat({ model: 'gpt-17' }), status: 404, code: 'model_not_found', param: 'model' },
  { name: 'unknown model, streamed', body: chat({ model: 'gpt-17', stream: true }), status: 404, code: 'model_not_found' },
  { name: 'missing messages', body: withoutField(chat({}), 'messages'), status: 400, code: 'missing_required_parameter', param: 'messages' },
  { name: 'messages not an array', body: chat({ messages: 'Hi' }), status: 400, param: 'messages' },
  { name: 'messages empty', body: chat({ messages: [] }), status: 400, param: 'messages' },
  { name: 'message not an object', body: chat({ messages: ['Hi'] }), status: 400, param: 'messages[0]' },
  { name: 'bad role', body: chat({ messages: [{ role: 'wizard', content: 'Hi' }] }), status: 400, param: 'messages[0].role' },
  { name: 'content a number', body: chat({ messages: [{ role: 'user', content: 42 }] }), status: 400, param: 'messages[0].content' },
  { name: 'content missing', body: chat({ messages: [{ role: 'user' }] }), status: 400, param: 'messages[0].content' },
  {
    name: 'image_url content part',
    body: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }),
    status: 400,
    param: 'messages[0].content[0].type',
  },
  {
    name: 'text part without text',
    body: chat({ messages: [{ role: 'user', content: [{ type: 'text' }] }] }),
    status: 400,
    param: 'messages[0].content[0].text',
  },
  {
    name: 'tool message without tool_call_id',
    body: chat({ messages: [{ role: 'tool', content: '42' }] }),
    status: 400,
    param: 'messages[0].tool_call_id',
  },
  {
    name: 'tool call of a bad type',
    body: chat({
      messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'x', function: { name: 'f', arguments: '{}' } }] }],
    }),
    status: 400,
    param: 'messages[0].tool_calls[0].type',
  },

  // Sampling fields.
  { name: 'temperature -1', body: chat({ temperature: -1 }), status: 400, param: 'temperature' },
  { name: 'temperature 3', body: chat({ temperature: 3 }), status: 400, param: 'temperature' },
  { name: 'temperature a string', body: chat({ temperature: 'hot' }), status: 400, param: 'temperature' },
  { name: 'top_p 1.5', body: chat({ top_p: 1.5 }), status: 400, param: 'top_p' },
  { name: 'top_k a string', body: chat({ top_k: 'ten' }), status: 400, param: 'top_k' },
  { name: 'top_k not an integer', body: chat({ top_k: 1.5 }), status: 400, param: 'top_k' },
  { name: 'presence_penalty 5', body: chat({ presence_penalty: 5 }), status: 400, param: 'presence_penalty' },
  { name: 'repetition_penalty 0', body: chat({ repetition_penalty: 0 }), status: 400, param: 'repetition_penalty' },
  { name: 'n 0', body: chat({ n: 0 }), status: 400, param: 'n' },
  { name: 'n 1000', body: chat({ n: 1000 }), status: 400, param: 'n' },
  { name: 'max_tokens 0', body: chat({ max_tokens: 0 }), status: 400, param: 'max_tokens' },
  { name: 'max_tokens -5', body: chat({ max_tokens: -5 }), status: 400, param: 'max_tokens' },
  { name: "max_tokens 'ten'", body: chat({ max_tokens: 'ten' }), status: 400, param: 'max_tokens' },
  { name: 'max_completion_tokens 0', body: chat({ max_completion_tokens: 0 }), status: 400, param: 'max_completion_tokens' },
  { name: 'min_tokens above max_tokens', body: chat({ min_tokens: 5 }), status: 400, param: 'min_tokens' },
  { name: 'ignore_eos a string', body: chat({ ignore_eos: 'yes' }), status: 400, param: 'ignore_eos' },
  { name: 'five stop sequences', body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), status: 400, param: 'stop' },
  { name: 'stop an empty string', body: chat({ stop: '' }), status: 400, param: 'stop' },
  { name: 'stop list with an empty string', body: chat({ stop: ['a', ''] }), status: 400, param: 'stop[1]' },
  { name: 'stop a number', body: chat({ stop: 7 }), status: 400, param: 'stop' },
  { name: 'logit_bias with a non-numeric key', body: chat({ logit_bias: { abc: 1 } }), status: 400, param: 'logit_bias.abc' },
  { name: 'logit_bias value 200', body: chat({ logit_bias: { '5': 200 } }), status: 400, param: 'logit_bias.5' },
  { name: 'logit_bias value a string', body: chat({ logit_bias: { '5': 'high' } }), status: 400, param: 'logit_bias.5' },
  {
    name: 'logit_bias on a token outside the vocabulary',
    body: chat({ logit_bias: { '99999': 5 } }),
    status: 400,
    param: 'logit_bias',
  },
  { name: 'seed a string', body: chat({ seed: '42' }), status: 400, param: 'seed' },
  { name: 'seed not an integer', body: chat({ seed: 1.5 }), status: 400, param: 'seed' },
  { name: 'stream a string', body: chat({ stream: 'yes' }), status: 400, param: 'stream' },
  { name: 'stream_options without stream', body: chat({ stream_options: { include_usage: true } }), status: 400, param: 'stream_options' },
  {
    name: 'stream_options.include_usage a string',
    body: chat({ stream: true, stream_options: { include_usage: 'yes' } }),
    status: 400,
    param: 'stream_options.include_usage',
  },
  { name: 'logprobs a number', body: chat({ logprobs: 5 }), status: 400, param: 'logprobs' },
  { name: 'top_logprobs without logprobs', body: chat({ top_logprobs: 2 }), status: 400, param: 'top_logprobs' },
  { name: 'top_logprobs 50', body: chat({ logprobs: true, top_logprobs: 50 }), status: 400, param: 'top_logprobs' },

  // Structured output and tools: what cannot be enforced or is malformed is refused, naming the field.
  { name: 'response_format of an unknown type', body: chat({ response_format: { type: 'xml' } }), status: 400, param: 'response_format.type' },
  {
    name: 'response_format json_schema without a name',
    body: chat({ response_format: { type: 'json_schema', json_schema: { schema: { type: 'object' } } } }),
    status: 400,
    param: 'response_format.json_schema.name',
  },
  {
    name: 'json_schema with a keyword that cannot be enforced',
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { n: { type: 'integer', multipleOf: 3 } } } } } }),
    status: 400,
    code: 'unsupported_schema_keyword',
    param: 'response_format.json_schema.schema.properties.n.multipleOf',
  },
  {
    name: 'json_schema with not, streamed',
    body: chat({ stream: true, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { not: { type: 'null' } } } } }),
    status: 400,
    code: 'unsupported_schema_keyword',
    param: 'response_format.json_schema.schema.not',
  },
  {
    name: 'json_schema with an unknown type',
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'strng' } } } }),
    status: 400,
    code: 'invalid_schema',
    param: 'response_format.json_schema.schema.type',
  },
  {
    name: 'json_schema with a $ref that does not resolve',
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: '#/$defs/b' } } } } } }),
    status: 400,
    code: 'invalid_schema',
    param: 'response_format.json_schema.schema.properties.a.$ref',
  },
  {
    name: 'json_schema that is not an object',
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: 'object' } } }),
    status: 400,
    param: 'response_format.json_schema.schema',
  },
  {
    name: 'completions: json_schema with an unsupported format',
    path: COMPLETIONS,
    body: completion({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'uri' } } } }),
    status: 400,
    code: 'unsupported_schema_keyword',
    param: 'response_format.json_schema.schema.format',
  },
  { name: 'grammar with an undefined rule', body: chat({ grammar: 'root ::= answer' }), status: 400, code: 'invalid_grammar', param: 'grammar' },
  { name: 'completions: grammar with a syntax error', path: COMPLETIONS, body: completion({ grammar: 'root ::= "a' }), status: 400, code: 'invalid_grammar', param: 'grammar' },
  { name: 'grammar that is left-recursive', body: chat({ grammar: 'root ::= root "a" | "b"' }), status: 400, code: 'invalid_grammar', param: 'grammar' },
  { name: 'grammar that needs NUL, which no token produces', body: chat({ grammar: 'root ::= "a" [\\x00]' }), status: 400, code: 'invalid_grammar', param: 'grammar' },
  { name: 'guided_choice with NUL', body: chat({ guided_choice: ['a\u0000'] }), status: 400, param: 'guided_choice' },
  { name: 'guided_regex with a lookahead', body: chat({ guided_regex: '(?=a)\\w+' }), status: 400, code: 'unsupported_regex', param: 'guided_regex' },
  { name: 'guided_regex that does not parse', body: chat({ guided_regex: '[a-z' }), status: 400, code: 'invalid_regex', param: 'guided_regex' },
  { name: 'guided_choice empty', body: chat({ guided_choice: [] }), status: 400, param: 'guided_choice' },
  { name: 'two constraints at once', body: chat({ grammar: 'root ::= "a"', guided_choice: ['a'] }), status: 400, param: 'guided_choice' },
  {
    name: 'tools with a bad function name',
    body: chat({ tools: [{ type: 'function', function: { name: 'get weather' } }] }),
    status: 400,
    param: 'tools[0].function.name',
  },
  {
    name: 'tools of a type other than function',
    body: chat({ tools: [{ type: 'retrieval', function: { name: 'f' } }] }),
    status: 400,
    param: 'tools[0].type',
  },
  {
    name: 'two tools with one name',
    body: chat({ tools: [{ type: 'function', function: { name: 'f' } }, { type: 'function', function: { name: 'f' } }] }),
    status: 400,
    param: 'tools[1].function.name',
  },
  {
    name: 'tool parameters with a keyword that cannot be enforced',
    body: chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'string', pattern: '(?!a)' } } } } }] }),
    status: 400,
    code: 'unsupported_regex',
    param: 'tools[0].function.parameters.properties.x.pattern',
  },
  {
    name: 'tool parameters that are not an object schema',
    body: chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'array' } } }] }),
    status: 400,
    code: 'invalid_schema',
    param: 'tools[0].function.parameters.type',
  },
  {
    name: 'tool_choice naming a function not in tools',
    body: chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }),
    status: 400,
    param: 'tool_choice.function.name',
  },
  { name: 'tool_choice required without tools', body: chat({ tool_choice: 'required' }), status: 400, param: 'tool_choice' },
  { name: 'tool_choice of an unknown mode', body: chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'always' }), status: 400, param: 'tool_choice' },
  { name: 'parallel_tool_calls a string', body: chat({ parallel_tool_calls: 'yes' }), status: 400, param: 'parallel_tool_calls' },
  {
    name: 'grammar together with tools',
    body: chat({ tools: [{ type: 'function', function: { name: 'f' } }], grammar: 'root ::= "a"' }),
    status: 400,
    param: 'grammar',
  },

  // Context length.
  {
    name: 'chat prompt longer than the context',
    body: () => chat({ messages: [{ role: 'user', content: tooLongText }] }),
    status: 400,
    code: 'context_length_exceeded',
    param: 'messages',
  },
  {
    name: 'chat prompt longer than the context, streamed',
    body: () => chat({ messages: [{ role: 'user', content: tooLongText }], stream: true }),
    status: 400,
    code: 'context_length_exceeded',
    param: 'messages',
  },
  {
    name: 'completion prompt longer than the context',
    path: COMPLETIONS,
    body: () => completion({ prompt: tooLongText }),
    status: 400,
    code: 'context_length_exceeded',
    param: 'prompt',
  },
  { name: 'max_tokens beyond the context', body: chat({ max_tokens: 5000 }), status: 400, code: 'context_length_exceeded', param: 'max_tokens' },

  // Completions.
  { name: 'completions: prompt a number', path: COMPLETIONS, body: completion({ prompt: 42 }), status: 400, param: 'prompt' },
  { name: 'completions: prompt an empty array', path: COMPLETIONS, body: completion({ prompt: [] }), status: 400, param: 'prompt' },
  { name: 'completions: missing prompt', path: COMPLETIONS, body: withoutField(completion({}), 'prompt'), status: 400, param: 'prompt' },
  {
    name: 'completions: prompt token outside the vocabulary',
    path: COMPLETIONS,
    body: completion({ prompt: [1, 99999] }),
    status: 400,
    param: 'prompt',
  },
  { name: 'completions: negative prompt token', path: COMPLETIONS, body: completion({ prompt: [-1] }), status: 400, param: 'prompt' },
  {
    name: 'completions: 17 prompts',
    path: COMPLETIONS,
    body: completion({ prompt: Array.from({ length: 17 }, () => 'Hi') }),
    status: 400,
    param: 'prompt',
  },
  {
    name: 'completions: suffix',
    path: COMPLETIONS,
    body: completion({ suffix: 'The end.' }),
    status: 400,
    code: 'unsupported_parameter',
    param: 'suffix',
  },
  { name: 'completions: logprobs 6', path: COMPLETIONS, body: completion({ logprobs: 6 }), status: 400, param: 'logprobs' },
  { name: 'completions: best_of other than n', path: COMPLETIONS, body: completion({ best_of: 2 }), status: 400, param: 'best_of' },
  { name: 'completions: unknown model', path: COMPLETIONS, body: completion({ model: 'nope' }), status: 404, code: 'model_not_found' },

  // Embeddings.
  { name: 'embeddings: empty input array', path: EMBEDDINGS, body: embedding({ input: [] }), status: 400, param: 'input' },
  { name: 'embeddings: input a number', path: EMBEDDINGS, body: embedding({ input: 42 }), status: 400, param: 'input' },
  { name: 'embeddings: input an object', path: EMBEDDINGS, body: embedding({ input: { text: 'Hi' } }), status: 400, param: 'input' },
  { name: 'embeddings: empty token array', path: EMBEDDINGS, body: embedding({ input: [[]] }), status: 400, param: 'input[0]' },
  { name: 'embeddings: empty string', path: EMBEDDINGS, body: embedding({ input: '' }), status: 400, param: 'input' },
  { name: 'embeddings: token outside the vocabulary', path: EMBEDDINGS, body: embedding({ input: [99999] }), status: 400, param: 'input[0]' },
  { name: 'embeddings: missing input', path: EMBEDDINGS, body: withoutField(embedding({}), 'input'), status: 400, param: 'input' },
  { name: 'embeddings: encoding_format hex', path: EMBEDDINGS, body: embedding({ encoding_format: 'hex' }), status: 400, param: 'encoding_format' },
  {
    name: 'embeddings: dimensions',
    path: EMBEDDINGS,
    body: embedding({ dimensions: 8 }),
    status: 400,
    code: 'unsupported_parameter',
    param: 'dimensions',
  },
  { name: 'embeddings: unknown model', path: EMBEDDINGS, body: embedding({ model: 'nope' }), status: 404, code: 'model_not_found', param: 'model' },

  // llama-server's routes.
  { name: 'tokenize without content', path: '/tokenize', body: {}, status: 400, param: 'content' },
  { name: 'tokenize content a number', path: '/tokenize', body: { content: 5 }, status: 400, param: 'content' },
  { name: 'tokenize with an unknown model', path: '/tokenize', body: { content: 'Hi', model: 'nope' }, status: 404, code: 'model_not_found' },
  { name: 'detokenize a negative token', path: '/detokenize', body: { tokens: [-1] }, status: 400, param: 'tokens' },
  { name: 'detokenize a token outside the vocabulary', path: '/detokenize', body: { tokens: [99999] }, status: 400, param: 'tokens' },
  { name: 'detokenize tokens not an array', path: '/detokenize', body: { tokens: 'abc' }, status: 400, param: 'tokens' },

  // Routes.
  { name: 'unknown route', path: '/v1/nothing-here', body: {}, status: 404, code: 'unknown_url' },
  { name: 'GET on a POST route', method: 'GET', path: CHAT, status: 404, code: 'unknown_url' },
  { name: 'unknown model id in /v1/models', method: 'GET', path: '/v1/models/no-such-model', status: 404, code: 'model_not_found' },
];

function assertErrorShape(body: any): void {
  assert.equal(typeof body, 'object', `error body should be JSON: ${String(body).slice(0, 200)}`);
  assert.ok(body !== null && typeof body.error === 'object' && body.error !== null, 'body has an error object');
  const { message, type, param, code } = body.error;
  assert.equal(typeof message, 'string');
  assert.ok(message.length > 0, 'message is not empty');
  assert.equal(typeof type, 'string');
  assert.ok(param === null || typeof param === 'string', 'param is a string or null');
  assert.ok(code === null || typeof code === 'string', 'code is a string or null');
}

before(async () => {
  server = await startTestServer();
  const piece = 'Once upon a time there was a cat. ';
  const count = async (text: string) =>
    (await rawRequest(server.url, 'POST', '/tokenize', { model: STORIES, content: text })).body.tokens.length as number;
  let total = 0;
  for (let repeats = Math.ceil(CONTEXT_SIZE / (await count(piece))); total <= CONTEXT_SIZE + 50; repeats += 10) {
    tooLongText = piece.repeat(repeats);
    total = await count(tooLongText);
  }
  assert.ok(total > CONTEXT_SIZE, `the long prompt has ${total} tokens`);
});

after(async () => {
  await server?.close();
});

describe('bad input', () => {
  test('the table has at least 40 distinct cases', () => {
    assert.ok(cases.length >= 40);
    assert.equal(new Set(cases.map((entry) => entry.name)).size, cases.length);
  });

  for (const entry of cases) {
    test(`${entry.name} -> ${entry.status}`, { todo: entry.todo }, async () => {
      const body = typeof entry.body === 'function' ? (entry.body as () => unknown)() : entry.body;
      const response = await rawRequest(server.url, entry.method ?? 'POST', entry.path ?? CHAT, body);
      assert.notEqual(response.status, 500, JSON.stringify(response.body));
      assert.equal(response.status, entry.status, JSON.stringify(response.body).slice(0, 500));
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assertErrorShape(response.body);
      if (entry.code !== undefined) assert.equal(response.body.error.code, entry.code);
      if (entry.param !== undefined) assert.equal(response.body.error.param, entry.param);
      if (entry.status === 404 || entry.status === 400 || entry.status === 413) {
        assert.equal(response.body.error.type, 'invalid_request_error');
      }
      assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
    });
  }

  test('the server keeps serving after all of that', async () => {
    const response = await server.client.chat.completions.create({ model: STORIES, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    assert.equal(response.choices[0].finish_reason, 'length');
    assert.equal(response.usage!.completion_tokens, 3);
    const ready = await rawRequest(server.url, 'GET', '/ready');
    assert.equal(ready.status, 200);
  });
});

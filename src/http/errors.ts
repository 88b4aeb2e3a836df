import { TokenmillError, type ErrorKind } from '../core/errors.js';
import type { AnthropicErrorBody } from '../protocol/anthropic/messages.js';
import type { OpenAIErrorBody } from '../protocol/openai/common.js';

/** The one map from error kinds to HTTP statuses and OpenAI error types. */
const statusOf: Record<ErrorKind, number> = {
  invalid_request: 400,
  authentication: 401,
  insufficient_quota: 402,
  permission: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limit: 429,
  overloaded: 429,
  internal: 500,
  unavailable: 503,
  timeout: 504,
};

const openAITypeOf: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  insufficient_quota: 'insufficient_quota',
  permission: 'permission_error',
  not_found: 'invalid_request_error',
  payload_too_large: 'invalid_request_error',
  unsupported_media_type: 'invalid_request_error',
  rate_limit: 'rate_limit_error',
  overloaded: 'rate_limit_error',
  internal: 'server_error',
  unavailable: 'server_error',
  timeout: 'timeout_error',
};

/**
 * Anthropic's statuses and error types, for routes under /v1/messages. Where Anthropic has no status of its own
 * (415, 503) ours is kept; `overloaded` is Anthropic's 529 overloaded_error (its SDK retries it, as it does 429).
 */
const anthropicOf: Record<ErrorKind, { status: number; type: string }> = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  authentication: { status: 401, type: 'authentication_error' },
  insufficient_quota: { status: 402, type: 'billing_error' },
  permission: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  payload_too_large: { status: 413, type: 'request_too_large' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit: { status: 429, type: 'rate_limit_error' },
  overloaded: { status: 529, type: 'overloaded_error' },
  internal: { status: 500, type: 'api_error' },
  unavailable: { status: 503, type: 'api_error' },
  timeout: { status: 504, type: 'timeout_error' },
};

/** Which API's error shape a route answers in: Anthropic's under /v1/messages, else OpenAI's. */
export type ErrorShape = 'openai' | 'anthropic';

export function errorShapeOf(url: string | undefined): ErrorShape {
  return url !== undefined && /^\/v1\/messages(?:[/?]|$)/.test(url) ? 'anthropic' : 'openai';
}

export interface MappedError {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody | AnthropicErrorBody;
  /** Whether it is a bug of ours, to log with its stack. */
  unexpected: boolean;
}

/** Fastify's own errors for bad HTTP input, mapped to typed errors. */
function fromFramework(error: { code?: string; statusCode?: number; message: string }): TokenmillError | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TokenmillError('payload_too_large', 'request_too_large', 'The request body is larger than the server accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TokenmillError('unsupported_media_type', 'unsupported_media_type', error.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new TokenmillError('invalid_request', 'invalid_json', 'The request body is empty; a JSON object was expected.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new TokenmillError('invalid_request', 'invalid_json', `The request body is not valid JSON: ${error.message}`);
  }
  if (error instanceof SyntaxError) {
    return new TokenmillError('invalid_request', 'invalid_json', `The request body is not valid JSON: ${error.message}`);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new TokenmillError('invalid_request', 'invalid_request', error.message);
  }
  return null;
}

/** Maps any error to its status, headers and body, in the shape of the API that `url` (the request's) belongs to. */
export function mapError(error: unknown, requestId: string, url?: string): MappedError {
  const typed =
    error instanceof TokenmillError ? error : fromFramework(error as { code?: string; statusCode?: number; message: string });
  if (errorShapeOf(url) === 'anthropic') return toAnthropic(typed, requestId);
  if (!typed) {
    return {
      status: 500,
      headers: {},
      body: {
        error: {
          message: `The server had an error while processing your request (request id ${requestId}).`,
          type: 'server_error',
          param: null,
          code: 'internal_error',
        },
      },
      unexpected: true,
    };
  }
  const headers: Record<string, string> = {};
  if (typed.retryAfterSeconds !== null) headers['retry-after'] = String(typed.retryAfterSeconds);
  return {
    status: statusOf[typed.kind],
    headers,
    body: { error: { message: typed.message, type: openAITypeOf[typed.kind], param: typed.param, code: typed.code } },
    unexpected: typed.kind === 'internal',
  };
}

function toAnthropic(typed: TokenmillError | null, requestId: string): MappedError {
  const { status, type } = anthropicOf[typed?.kind ?? 'internal'];
  // Anthropic's errors have no `param`: the field leads the message instead, as Anthropic writes it (`max_tokens: ...`).
  const message =
    typed === null
      ? `The server had an error while processing your request (request id ${requestId}).`
      : typed.param !== null && !typed.message.includes(typed.param)
        ? `${typed.param}: ${typed.message}`
        : typed.message;
  const headers: Record<string, string> = {};
  if (typed?.retryAfterSeconds != null) headers['retry-after'] = String(typed.retryAfterSeconds);
  return {
    status,
    headers,
    body: { type: 'error', error: { type, message }, request_id: requestId },
    unexpected: typed === null || typed.kind === 'internal',
  };
}

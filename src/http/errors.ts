import { TokenmillError, type ErrorKind } from '../core/errors.js';
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

export interface MappedError {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
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

export function mapError(error: unknown, requestId: string): MappedError {
  const typed =
    error instanceof TokenmillError ? error : fromFramework(error as { code?: string; statusCode?: number; message: string });
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

/**
 * Typed errors of the core. They carry a stable snake_case `code`, the offending `param` and a `kind`
 * that says what went wrong in protocol-neutral terms. They never carry an HTTP status: `http/errors.ts`
 * maps a kind to a status and to each API's error shape, in one place.
 */
export type ErrorKind =
  | 'invalid_request' // the client sent something we will not process (400)
  | 'authentication' // missing or bad credentials (401)
  | 'permission' // authenticated but not allowed (403)
  | 'not_found' // model, route or object does not exist (404)
  | 'payload_too_large' // body over the size limit (413)
  | 'unsupported_media_type' // body of a type we do not parse (415)
  | 'rate_limit' // a limit of the caller was hit (429)
  | 'overloaded' // the server has no room now; retry later (429 with retry-after)
  | 'insufficient_quota' // no funds (402)
  | 'timeout' // the request's deadline passed (504)
  | 'unavailable' // shutting down or not ready (503)
  | 'internal'; // a bug: hidden from the client (500)

export class TokenmillError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly param: string | null;
  /** Seconds after which a retry may succeed, for `rate_limit` and `overloaded`. */
  readonly retryAfterSeconds: number | null;

  constructor(
    kind: ErrorKind,
    code: string,
    message: string,
    options: { param?: string | null; retryAfterSeconds?: number | null; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenmillError';
    this.kind = kind;
    this.code = code;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }
}

export function invalidRequest(message: string, param: string | null = null, code = 'invalid_value'): TokenmillError {
  return new TokenmillError('invalid_request', code, message, { param });
}

export function modelNotFound(model: string): TokenmillError {
  return new TokenmillError('not_found', 'model_not_found', `The model '${model}' does not exist.`, { param: 'model' });
}

export function contextLengthExceeded(promptTokens: number, contextSize: number, param = 'messages'): TokenmillError {
  return new TokenmillError(
    'invalid_request',
    'context_length_exceeded',
    `This model's maximum context length is ${contextSize} tokens. However, your prompt has ${promptTokens} tokens. ` +
      'Please reduce the length of the prompt.',
    { param },
  );
}

/** An error the client caused by going away; never reported to anyone. */
export class AbortedError extends Error {
  constructor() {
    super('The request was aborted.');
    this.name = 'AbortedError';
  }
}

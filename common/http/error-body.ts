import { ErrorCode } from '../error-codes';
import { isSiloError } from '../errors';

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: Record<string, unknown> };
}

/** Maps any thrown value to a status and a body safe for clients: unknown errors never leak their message or stack. */
export function toErrorResponse(err: unknown, requestId?: string): { status: number; body: ErrorBody; internal: boolean } {
  if (isSiloError(err)) {
    return { status: err.status, internal: false, body: { error: { code: err.code, message: err.message, requestId, ...(err.details ? { details: err.details } : {}) } } };
  }
  const e = err as { status?: number; type?: string; statusCode?: number; expose?: boolean };
  // body-parser / raw-body errors (express): keep their 4xx status with our stable codes.
  const status = e?.status ?? e?.statusCode;
  if (status === 413 || e?.type === 'entity.too.large') {
    return { status: 413, internal: false, body: { error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'Request body is too large', requestId } } };
  }
  if (e?.type === 'entity.parse.failed') {
    return { status: 400, internal: false, body: { error: { code: ErrorCode.VALIDATION_FAILED, message: 'Request body is not valid JSON', requestId } } };
  }
  if (typeof status === 'number' && status >= 400 && status < 500 && e?.expose) {
    return { status, internal: false, body: { error: { code: ErrorCode.VALIDATION_FAILED, message: 'Bad request', requestId } } };
  }
  return { status: 500, internal: true, body: { error: { code: ErrorCode.INTERNAL, message: 'Internal error', requestId } } };
}

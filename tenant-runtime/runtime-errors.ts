import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';

/**
 * Every error the runtime answers with: a stable code, a status and a message safe for any client.
 * Authentication failures share one message whatever the cause (unknown, revoked, expired, other tenant's key).
 */
export const runtimeErrors = {
  noTenant: () => new SiloError(ErrorCode.TENANT_NOT_FOUND, 'No tenant in the request: use <slug>.<base domain>, /tenants/<slug>/… or a mapped custom domain', 404),
  apiKeyInvalid: () => new SiloError(ErrorCode.API_KEY_INVALID, 'Missing or invalid API key', 401),
  suspended: () => new SiloError(ErrorCode.TENANT_SUSPENDED, 'Tenant is suspended', 403),
  /** Not retryable: offboarding ends with the tenant deleted, unless an admin cancels it. */
  offboarding: () => new SiloError(ErrorCode.TENANT_OFFBOARDING, 'Tenant is being offboarded: its data is exported, then deleted. Retrying will not help', 410),
  unavailable: (why = 'Tenant database is not available') => new SiloError(ErrorCode.TENANT_UNAVAILABLE, why, 503),
  rateLimited: (retryAfterSeconds: number) => new SiloError(ErrorCode.RATE_LIMITED, 'Too many requests for this tenant', 429, { retryAfterSeconds }),
  /** `limit` says what was full: the tenant's own pool (its tier) or this replica's connection budget. */
  poolExhausted: (limit?: 'tenant' | 'replica') =>
    new SiloError(ErrorCode.POOL_EXHAUSTED, 'No database connection available in time: retry shortly', 503, limit ? { limit } : undefined),
  queryTimeout: (ms: number) => new SiloError(ErrorCode.QUERY_TIMEOUT, `Query exceeded the ${ms} ms statement timeout`, 504, { timeoutMs: ms }),
  resultTooLarge: (what: 'rows' | 'bytes', limit: number) => new SiloError(ErrorCode.RESULT_TOO_LARGE, `Result exceeds ${limit} ${what}: page it with LIMIT`, 400, { limit, unit: what }),
  /** The tenant database sent one message (a notice, an error...) larger than the runtime accepts. */
  messageTooLarge: (message: string, limit: number) =>
    new SiloError(ErrorCode.RESULT_TOO_LARGE, `The database sent a ${message} message larger than ${limit} bytes`, 400, { limit, unit: 'bytes', message }),
  payloadTooLarge: (limit: number) => new SiloError(ErrorCode.PAYLOAD_TOO_LARGE, `Request body exceeds ${limit} bytes`, 413, { limit }),
  invalid: (message: string) => new SiloError(ErrorCode.VALIDATION_FAILED, message, 400),
  notFound: () => new SiloError(ErrorCode.NOT_FOUND, 'Not found', 404),
  draining: () => new SiloError(ErrorCode.TENANT_UNAVAILABLE, 'Server is shutting down: retry', 503),
};

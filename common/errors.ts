import { ErrorCode } from './error-codes';

/**
 * Every error Silo raises on purpose. `message` is safe to show a client:
 * it never carries secrets, SQL from other tenants or stack traces.
 */
export class SiloError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status = 400,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'SiloError';
  }
}

export const isSiloError = (e: unknown): e is SiloError => e instanceof SiloError;

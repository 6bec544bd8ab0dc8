import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { toErrorResponse } from '../../common/http/error-body';
import type { Logger } from '../../common/logger';

const HTTP_CODES: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.NOT_FOUND]: ErrorCode.NOT_FOUND,
  [HttpStatus.UNAUTHORIZED]: ErrorCode.UNAUTHORIZED,
  [HttpStatus.PAYLOAD_TOO_LARGE]: ErrorCode.PAYLOAD_TOO_LARGE,
  [HttpStatus.BAD_REQUEST]: ErrorCode.VALIDATION_FAILED,
};

/** The one place errors become HTTP responses. Clients get a code and a safe message, never a stack. */
@Catch()
export class SiloExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request & { id?: string }>();
    const res = ctx.getResponse<Response>();
    const err = exception instanceof HttpException ? fromHttpException(exception) : exception;
    const { status, body, internal } = toErrorResponse(err, req.id);
    if (internal) this.logger.error({ err: exception, requestId: req.id, path: req.path }, 'unhandled error');
    if (res.headersSent) return;
    res.status(status).json(body);
  }
}

function fromHttpException(e: HttpException): SiloError {
  const status = e.getStatus();
  const code = HTTP_CODES[status] ?? (status >= 500 ? ErrorCode.INTERNAL : ErrorCode.VALIDATION_FAILED);
  const response = e.getResponse() as { message?: string | string[] } | string;
  const raw = typeof response === 'string' ? response : response.message;
  const problems = Array.isArray(raw) ? raw : undefined;
  const message = status === 404 ? 'Not found' : problems ? 'Request validation failed' : typeof raw === 'string' ? raw : e.message;
  return new SiloError(code, message, status, problems ? { problems } : undefined);
}

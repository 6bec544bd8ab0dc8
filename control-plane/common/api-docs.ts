import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';

/** OpenAPI helpers for the admin API: the error body every route shares and the error responses each route declares. */

/** The security scheme's name in the document (what `@ApiBearerAuth()` refers to). */
export const ADMIN_AUTH_SCHEME = 'bearer';

/** `error` of {@link ErrorResponse}: what common/http/error-body.ts (toErrorResponse) sends. */
export class ErrorDetail {
  @ApiProperty({ enum: ErrorCode, description: 'Stable error code: clients switch on this, never on the message' }) code!: ErrorCode;
  @ApiProperty({ example: 'Tenant acme not found', description: 'Safe for clients: no secrets, no stack traces' }) message!: string;
  @ApiPropertyOptional({ description: 'The request id (also the `x-request-id` response header), to find the request in the logs' }) requestId?: string;
  @ApiPropertyOptional({
    type: 'object', additionalProperties: true,
    description: 'Code-specific data, e.g. `problems` (VALIDATION_FAILED from request validation), `from`/`to` (INVALID_TRANSITION), `step` (OFFBOARDING_IRREVERSIBLE), `reason` (WEBHOOK_SIGNATURE_INVALID), `permission`/`role` (FORBIDDEN)',
  })
  details?: Record<string, unknown>;
}

/** Every error response of the control plane (SiloExceptionFilter). */
export class ErrorResponse {
  @ApiProperty({ type: ErrorDetail }) error!: ErrorDetail;
}

export interface ApiErrorsOptions {
  /** Admin route (AdminAuthGuard): 401 UNAUTHORIZED and 403 FORBIDDEN. Default true. */
  auth?: boolean;
  /** A JSON body, query string or validated path parameter: 400 VALIDATION_FAILED. `body` also adds 413. */
  validation?: boolean;
  body?: boolean;
  /** 404 with these codes (e.g. TENANT_NOT_FOUND). */
  notFound?: ErrorCode[];
  /** 409 with these codes. */
  conflict?: ErrorCode[];
  /** 503 with these codes. */
  unavailable?: ErrorCode[];
  /** Extra 400 codes beyond VALIDATION_FAILED (e.g. the webhook's signature codes). */
  badRequest?: ErrorCode[];
}

const codes = (list: ErrorCode[]) => list.map((c) => `\`${c}\``).join(', ');

/** The error responses a route can produce, all with the shared {@link ErrorResponse} body. */
export function ApiErrors(o: ApiErrorsOptions = {}): MethodDecorator & ClassDecorator {
  const responses: Array<{ status: number; description: string }> = [];
  const bad = [...(o.validation || o.body ? [ErrorCode.VALIDATION_FAILED] : []), ...(o.badRequest ?? [])];
  if (bad.length) responses.push({ status: 400, description: `${codes(bad)}: the request is invalid (details.problems lists validation failures)` });
  if (o.auth ?? true) {
    responses.push({ status: 401, description: '`UNAUTHORIZED`: missing, unknown, expired or revoked token, or a disabled operator' });
    responses.push({ status: 403, description: "`FORBIDDEN`: the operator's role lacks this route's permission (docs/operators.md)" });
  }
  if (o.notFound?.length) responses.push({ status: 404, description: `${codes(o.notFound)}: no such resource` });
  if (o.conflict?.length) responses.push({ status: 409, description: `${codes(o.conflict)}: conflicts with the resource's current state` });
  if (o.body) responses.push({ status: 413, description: '`PAYLOAD_TOO_LARGE`: the request body is over the limit' });
  if (o.unavailable?.length) responses.push({ status: 503, description: `${codes(o.unavailable)}: not available on this control plane` });
  return applyDecorators(...responses.map((r) => ApiResponse({ ...r, type: ErrorResponse })));
}

/** An ISO 8601 timestamp property (Dates serialize to strings). */
export const ApiDateTime = (o: { nullable?: boolean; required?: boolean; description?: string } = {}) =>
  ApiProperty({ type: String, format: 'date-time', nullable: o.nullable, required: o.required ?? true, description: o.description });

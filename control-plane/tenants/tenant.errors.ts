import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

export const tenantNotFound = (ref: string) => new SiloError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${ref} not found`, 404);
export const slugTaken = (slug: string) => new SiloError(ErrorCode.TENANT_SLUG_TAKEN, `Slug ${slug} is already taken`, 409);
export const tenantStillActive = () =>
  new SiloError(ErrorCode.TENANT_NOT_ACTIVE, 'Tenant is active: suspend it first or pass force=true to offboard now', 409);

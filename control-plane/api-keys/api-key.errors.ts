import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

export const apiKeyNotFound = (id: string) => new SiloError(ErrorCode.NOT_FOUND, `API key ${id} not found`, 404);
export const tooManyApiKeys = (max: number) => new SiloError(ErrorCode.CONFLICT, `A tenant may have at most ${max} active API keys: revoke one first`, 409);
export const apiKeyRevoked = (id: string) => new SiloError(ErrorCode.CONFLICT, `API key ${id} is revoked and cannot be rotated`, 409);

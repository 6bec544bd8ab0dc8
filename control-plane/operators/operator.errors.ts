import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

export const operatorNotFound = (id: string) => new SiloError(ErrorCode.NOT_FOUND, `Operator ${id} not found`, 404);
export const operatorTokenNotFound = (id: string) => new SiloError(ErrorCode.NOT_FOUND, `Token ${id} not found`, 404);
export const operatorEmailTaken = (email: string) => new SiloError(ErrorCode.CONFLICT, `An operator with email ${email} already exists`, 409);
export const operatorDisabled = (id: string) => new SiloError(ErrorCode.CONFLICT, `Operator ${id} is disabled: enable it before issuing tokens`, 409);
export const tooManyOperatorTokens = (max: number) => new SiloError(ErrorCode.CONFLICT, `An operator may have at most ${max} live tokens: revoke one first`, 409);

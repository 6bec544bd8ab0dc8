import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import type { ControlPlaneConfig } from '../config';
import { CONFIG } from './tokens';

/** Bearer ADMIN_TOKEN on every admin route. Digests are compared so length differences leak nothing. */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(CONFIG) config: ControlPlaneConfig) {
    this.expected = createHash('sha256').update(config.ADMIN_TOKEN).digest();
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    if (!match) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Missing bearer token', 401);
    const given = createHash('sha256').update(match[1]).digest();
    if (!timingSafeEqual(given, this.expected)) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Invalid admin token', 401);
    return true;
  }
}

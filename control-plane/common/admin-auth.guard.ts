import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import type { ControlPlaneConfig } from '../config';
import { OperatorsService } from '../operators/operators.service';
import { Actor, BREAK_GLASS } from './actor-context';
import { PERMISSION_KEY, roleCan, RoutePermission } from './permissions';
import { CONFIG } from './tokens';

/** The authenticated caller, left on the request for ActorInterceptor (and the audit log). */
export type AuthenticatedRequest = Request & { actor?: Actor };

/**
 * Every admin route: `Authorization: Bearer` with ADMIN_TOKEN (break-glass: every permission) or an
 * operator's personal token (its role's permissions, common/permissions.ts). No, unknown, expired or
 * revoked token, or a disabled operator: 401. Authenticated but the role lacks the route's
 * `@Permission`, or the route declares none: 403 FORBIDDEN.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(CONFIG) config: ControlPlaneConfig, private readonly operators: OperatorsService, private readonly reflector: Reflector) {
    this.expected = createHash('sha256').update(config.ADMIN_TOKEN).digest();
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    if (!match) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Missing bearer token', 401);
    const token = match[1];
    const route = this.reflector.getAllAndOverride<RoutePermission | undefined>(PERMISSION_KEY, [context.getHandler(), context.getClass()]);

    // Digests are compared so length differences leak nothing.
    if (timingSafeEqual(createHash('sha256').update(token).digest(), this.expected)) {
      if (!route) throw noPermissionDeclared();
      req.actor = BREAK_GLASS;
      return true;
    }
    const auth = await this.operators.authenticate(token);
    if (!auth.ok) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Invalid, expired or revoked token', 401);
    if (!route) throw noPermissionDeclared();
    const { principal } = auth;
    const own = route.self === true && typeof req.params?.id === 'string' && req.params.id === principal.operatorId;
    if (!own && !roleCan(principal.role, route.permission)) {
      throw new SiloError(ErrorCode.FORBIDDEN, `Role ${principal.role} may not do this (needs ${route.permission})`, 403, { permission: route.permission, role: principal.role });
    }
    req.actor = { kind: 'operator', operatorId: principal.operatorId, email: principal.email, tokenId: principal.tokenId, tokenPrefix: principal.tokenPrefix };
    return true;
  }
}

// Fail closed: a handler added without @Permission is refused to everyone (test/operators-api.test.ts also lists such routes).
const noPermissionDeclared = () => new SiloError(ErrorCode.FORBIDDEN, 'This route declares no permission', 403);

import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { ConsoleSessionService, sessionCookie } from '../console/console-session.service';
import { Actor } from './actor-context';
import { Caller, CallerVerifier } from './caller-verifier';
import { PERMISSION_KEY, roleCan, RoutePermission } from './permissions';

/** The authenticated caller, left on the request for ActorInterceptor (and the audit log). */
export type AuthenticatedRequest = Request & { actor?: Actor };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Every admin route: `Authorization: Bearer` with ADMIN_TOKEN (break-glass: every permission) or an
 * operator's personal token (its role's permissions, common/permissions.ts); or, with no
 * Authorization header, the console's session cookie, plus its CSRF token in `x-csrf-token` on
 * anything but GET/HEAD (else 403 CSRF_TOKEN_INVALID). No, unknown, expired or revoked credential,
 * a disabled operator, an ended session: 401. Authenticated but the role lacks the route's
 * `@Permission`, or the route declares none: 403 FORBIDDEN.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  constructor(private readonly verifier: CallerVerifier, private readonly sessions: ConsoleSessionService, private readonly reflector: Reflector) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const route = this.reflector.getAllAndOverride<RoutePermission | undefined>(PERMISSION_KEY, [context.getHandler(), context.getClass()]);
    const caller = await this.caller(req);
    if (!route) throw noPermissionDeclared();
    if (caller.role !== '*') {
      const own = route.self === true && typeof req.params?.id === 'string' && req.params.id === caller.actor.operatorId;
      if (!own && !roleCan(caller.role, route.permission)) {
        throw new SiloError(ErrorCode.FORBIDDEN, `Role ${caller.role} may not do this (needs ${route.permission})`, 403, { permission: route.permission, role: caller.role });
      }
    }
    req.actor = caller.actor;
    return true;
  }

  private async caller(req: AuthenticatedRequest): Promise<Caller> {
    const header = req.headers.authorization;
    if (header === undefined) {
      const sid = sessionCookie(req.headers.cookie);
      if (sid === undefined) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Missing bearer token', 401);
      const session = await this.sessions.resolve(sid);
      if (!session) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Console session expired or signed out', 401);
      if (!SAFE_METHODS.has(req.method) && !this.sessions.csrfMatches(session, req.headers['x-csrf-token'])) {
        throw new SiloError(ErrorCode.CSRF_TOKEN_INVALID, 'Missing or wrong CSRF token for this console session', 403);
      }
      return session.caller;
    }
    const match = /^Bearer (.+)$/.exec(header);
    if (!match) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Missing bearer token', 401);
    const caller = await this.verifier.verify(match[1] as string);
    if (!caller) throw new SiloError(ErrorCode.UNAUTHORIZED, 'Invalid, expired or revoked token', 401);
    return caller;
  }
}

// Fail closed: a handler added without @Permission is refused to everyone (test/operators-api.test.ts also lists such routes).
const noPermissionDeclared = () => new SiloError(ErrorCode.FORBIDDEN, 'This route declares no permission', 403);

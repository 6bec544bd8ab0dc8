import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { runAs } from '../common/actor-context';
import type { AuthenticatedRequest } from '../common/admin-auth.guard';

/**
 * Runs an authenticated admin handler as its caller, so every audit row it writes names them
 * (audit-log.repository.ts reads currentActor()). Interceptors run after guards; Nest binds the
 * handler's async scope when `handle()` is called, so calling it inside runAs carries the actor.
 */
@Injectable()
export class ActorInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const actor = context.switchToHttp().getRequest<AuthenticatedRequest>().actor;
    return actor ? runAs(actor, () => next.handle()) : next.handle();
  }
}

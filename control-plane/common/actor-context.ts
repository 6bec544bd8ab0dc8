import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who is acting, recorded on every audit row (issue #18). `operator`: a named operator through one
 * of their tokens; `break-glass`: ADMIN_TOKEN; `billing`: a Stripe event (webhook or billing
 * reconcile); `system`: the worker's own jobs and sweeps.
 */
export type ActorKind = 'operator' | 'break-glass' | 'billing' | 'system';
export const ACTOR_KINDS: readonly ActorKind[] = ['operator', 'break-glass', 'billing', 'system'];

export interface Actor {
  kind: ActorKind;
  operatorId: string | null;
  email: string | null;
  tokenId: string | null;
  /** The token's public prefix (`silo_op_<12 hex>`), to recognise it in listings. */
  tokenPrefix: string | null;
}

export const BREAK_GLASS: Actor = Object.freeze({ kind: 'break-glass', operatorId: null, email: null, tokenId: null, tokenPrefix: null });
export const BILLING_ACTOR: Actor = Object.freeze({ kind: 'billing', operatorId: null, email: null, tokenId: null, tokenPrefix: null });
export const SYSTEM_ACTOR: Actor = Object.freeze({ kind: 'system', operatorId: null, email: null, tokenId: null, tokenPrefix: null });

// The authenticated caller of the admin request being handled, set by ActorInterceptor around the handler,
// so services need not pass it through every call to reach the audit log.
const storage = new AsyncLocalStorage<Actor>();

export function runAs<T>(actor: Actor, fn: () => T): T {
  return storage.run(actor, fn);
}

/** The admin request's caller, or undefined outside an authenticated request (webhooks, the worker). */
export function currentActor(): Actor | undefined {
  return storage.getStore();
}

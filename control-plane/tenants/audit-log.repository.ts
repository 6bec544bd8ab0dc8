/**
 * The owner of `audit_log`: the only code writing or reading it. Functions, not an injectable, so
 * any repository can write an audit row in its caller's transaction (pass that EntityManager).
 */
import { EntityManager } from 'typeorm';
import { Actor, BILLING_ACTOR, currentActor, SYSTEM_ACTOR } from '../common/actor-context';
import { write } from '../db/pipelined-transaction';
import { AuditCauseType, AuditEntry } from './audit-entry.entity';

export interface AuditInput {
  tenantId: string | null;
  action: string;
  fromStatus?: string | null;
  toStatus?: string | null;
  causeType: AuditCauseType;
  causeId?: string | null;
  detail?: Record<string, unknown>;
  /** Default: the admin request's caller for an `admin` cause, `billing` for a Stripe event, else `system`. */
  actor?: Actor;
}

/**
 * Who a row is attributed to. An admin cause outside an authenticated request has no caller to name:
 * it is recorded as `system` rather than guessed.
 */
export function actorFor(entry: Pick<AuditInput, 'causeType' | 'actor'>): Actor {
  if (entry.actor) return entry.actor;
  if (entry.causeType === 'admin') return currentActor() ?? SYSTEM_ACTOR;
  return entry.causeType === 'stripe_event' ? BILLING_ACTOR : SYSTEM_ACTOR;
}

/** Appends a row; deferred inside a pipelined transaction (nothing reads it back before commit). */
export async function appendAudit(m: EntityManager, entry: AuditInput): Promise<void> {
  const a = actorFor(entry);
  await write(
    m,
    `INSERT INTO audit_log (tenant_id, action, from_status, to_status, cause_type, cause_id, detail, actor_kind, actor_operator_id, actor_email, actor_token_id, actor_token_prefix)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [entry.tenantId, entry.action, entry.fromStatus ?? null, entry.toStatus ?? null, entry.causeType, entry.causeId ?? null, JSON.stringify(entry.detail ?? {}), a.kind, a.operatorId, a.email, a.tokenId, a.tokenPrefix],
  );
}

/** A row's actor, as the API shows it. */
export const auditActor = (a: AuditEntry): Actor => ({ kind: a.actorKind, operatorId: a.actorOperatorId, email: a.actorEmail, tokenId: a.actorTokenId, tokenPrefix: a.actorTokenPrefix });

/** A tenant's audit rows, newest first, `limit` of them before `beforeId` (a page cursor). */
export function auditHistory(m: EntityManager, tenantId: string, limit: number, beforeId?: string): Promise<AuditEntry[]> {
  const qb = m.getRepository(AuditEntry).createQueryBuilder('a').where('a.tenant_id = :tenantId', { tenantId });
  if (beforeId) qb.andWhere('a.id < :beforeId', { beforeId });
  return qb.orderBy('a.id', 'DESC').limit(limit).getMany();
}

/** Fleet-wide audit rows, newest first; optionally only one operator's, or only rows with no tenant (operator management). */
export function auditLog(m: EntityManager, q: { limit: number; beforeId?: string; operatorId?: string; tenantId?: string }): Promise<AuditEntry[]> {
  const qb = m.getRepository(AuditEntry).createQueryBuilder('a');
  if (q.operatorId) qb.andWhere('a.actor_operator_id = :operatorId', { operatorId: q.operatorId });
  if (q.tenantId) qb.andWhere('a.tenant_id = :tenantId', { tenantId: q.tenantId });
  if (q.beforeId) qb.andWhere('a.id < :beforeId', { beforeId: q.beforeId });
  return qb.orderBy('a.id', 'DESC').limit(q.limit).getMany();
}

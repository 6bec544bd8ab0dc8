/**
 * The owner of `audit_log`: the only code writing or reading it. Functions, not an injectable, so
 * any repository can write an audit row in its caller's transaction (pass that EntityManager).
 */
import { EntityManager } from 'typeorm';
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
}

/** Appends a row; deferred inside a pipelined transaction (nothing reads it back before commit). */
export async function appendAudit(m: EntityManager, entry: AuditInput): Promise<void> {
  await write(
    m,
    `INSERT INTO audit_log (tenant_id, action, from_status, to_status, cause_type, cause_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [entry.tenantId, entry.action, entry.fromStatus ?? null, entry.toStatus ?? null, entry.causeType, entry.causeId ?? null, JSON.stringify(entry.detail ?? {})],
  );
}

/** A tenant's audit rows, newest first, `limit` of them before `beforeId` (a page cursor). */
export function auditHistory(m: EntityManager, tenantId: string, limit: number, beforeId?: string): Promise<AuditEntry[]> {
  const qb = m.getRepository(AuditEntry).createQueryBuilder('a').where('a.tenant_id = :tenantId', { tenantId });
  if (beforeId) qb.andWhere('a.id < :beforeId', { beforeId });
  return qb.orderBy('a.id', 'DESC').limit(limit).getMany();
}

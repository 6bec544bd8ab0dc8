import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, IsNull } from 'typeorm';
import { DATA_SOURCE } from '../common/tokens';
import { AuditCauseType, AuditEntry } from '../tenants/audit-entry.entity';
import { appendAudit, auditLog } from '../tenants/audit-log.repository';
import { Operator } from './operator.entity';
import { OperatorToken } from './operator-token.entity';

/** What authenticating a token needs, read in one query so a revoke or a disable counts at once. */
export interface TokenCredential {
  tokenId: string;
  prefix: string;
  hash: string;
  expiresAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  operatorId: string;
  email: string;
  role: string;
  disabledAt: Date | null;
}

/** The owner of `operators` and `operator_tokens`. Audit rows go through their owner (audit-log.repository.ts). */
@Injectable()
export class OperatorRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  list(): Promise<Operator[]> {
    return this.ds.getRepository(Operator).find({ order: { createdAt: 'ASC', id: 'ASC' } });
  }

  find(id: string, m: EntityManager = this.ds.manager): Promise<Operator | null> {
    return m.getRepository(Operator).findOneBy({ id });
  }

  /** Locked, so concurrent changes of one operator (a disable and a token issue) serialise. */
  findForUpdate(id: string, m: EntityManager): Promise<Operator | null> {
    return m.getRepository(Operator).createQueryBuilder('o').where('o.id = :id', { id }).setLock('pessimistic_write').getOne();
  }

  /** Case-insensitively, like the unique index. */
  findByEmail(email: string): Promise<Operator | null> {
    return this.ds.getRepository(Operator).createQueryBuilder('o').where('lower(o.email) = lower(:email)', { email }).getOne();
  }

  async emailTaken(email: string, m: EntityManager): Promise<boolean> {
    return (await m.getRepository(Operator).createQueryBuilder('o').where('lower(o.email) = lower(:email)', { email }).getCount()) > 0;
  }

  async insert(op: Pick<Operator, 'id' | 'email' | 'name' | 'role'>, m: EntityManager): Promise<Operator> {
    await m.getRepository(Operator).insert({ ...op, disabledAt: null });
    return m.getRepository(Operator).findOneByOrFail({ id: op.id });
  }

  async update(id: string, changes: Partial<Pick<Operator, 'name' | 'role' | 'disabledAt'>>, m: EntityManager): Promise<Operator> {
    await m.getRepository(Operator).update({ id }, changes);
    return m.getRepository(Operator).findOneByOrFail({ id });
  }

  tokens(operatorId: string): Promise<OperatorToken[]> {
    return this.ds.getRepository(OperatorToken).find({ where: { operatorId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  findToken(operatorId: string, id: string, m: EntityManager = this.ds.manager): Promise<OperatorToken | null> {
    return m.getRepository(OperatorToken).findOneBy({ id, operatorId });
  }

  async insertToken(t: Pick<OperatorToken, 'id' | 'operatorId' | 'name' | 'prefix' | 'hash' | 'expiresAt'>, m: EntityManager): Promise<OperatorToken> {
    await m.getRepository(OperatorToken).insert({ ...t, revokedAt: null, lastUsedAt: null });
    return m.getRepository(OperatorToken).findOneByOrFail({ id: t.id });
  }

  async revokeToken(id: string, at: Date, m: EntityManager): Promise<void> {
    await m.getRepository(OperatorToken).update({ id, revokedAt: IsNull() }, { revokedAt: at });
  }

  /** Revokes every live token of the operator; returns how many. */
  async revokeAllTokens(operatorId: string, at: Date, m: EntityManager): Promise<number> {
    const r = await m.getRepository(OperatorToken).update({ operatorId, revokedAt: IsNull() }, { revokedAt: at });
    return r.affected ?? 0;
  }

  async credential(prefix: string): Promise<TokenCredential | null> {
    const rows: Array<Record<string, unknown>> = await this.ds.query(
      `SELECT t.id AS token_id, t.prefix, t.hash, t.expires_at, t.revoked_at, t.last_used_at, o.id AS operator_id, o.email, o.role, o.disabled_at
         FROM operator_tokens t JOIN operators o ON o.id = t.operator_id WHERE t.prefix = $1`,
      [prefix],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      tokenId: r.token_id as string, prefix: r.prefix as string, hash: r.hash as string, expiresAt: r.expires_at as Date, revokedAt: r.revoked_at as Date | null,
      lastUsedAt: r.last_used_at as Date | null, operatorId: r.operator_id as string, email: r.email as string, role: r.role as string, disabledAt: r.disabled_at as Date | null,
    };
  }

  /** Records a use; callers throttle it (one write per token per minute at most). */
  async touchToken(id: string, at: Date): Promise<void> {
    await this.ds.getRepository(OperatorToken).update({ id }, { lastUsedAt: at });
  }

  async audit(action: string, detail: Record<string, unknown>, m: EntityManager, cause: { causeType: AuditCauseType; causeId: string } = { causeType: 'admin', causeId: 'admin-api' }): Promise<void> {
    await appendAudit(m, { tenantId: null, action, ...cause, detail });
  }

  auditLog(q: { limit: number; beforeId?: string; operatorId?: string; tenantId?: string }): Promise<AuditEntry[]> {
    return auditLog(this.ds.manager, q);
  }
}

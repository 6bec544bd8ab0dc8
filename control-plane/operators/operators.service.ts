import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Actor } from '../common/actor-context';
import { Role } from '../common/permissions';
import { CLOCK } from '../common/tokens';
import { operatorDisabled, operatorEmailTaken, operatorNotFound, operatorTokenNotFound, tooManyOperatorTokens } from './operator.errors';
import { Operator } from './operator.entity';
import { OperatorRepository } from './operator.repository';
import { OperatorToken } from './operator-token.entity';
import { displayPrefix, generateOperatorToken, operatorTokenMatches, operatorTokenPrefix } from './operator-token-format';

export const MAX_LIVE_TOKENS_PER_OPERATOR = 20;
const DAY_MS = 86_400_000;
const TOUCH_EVERY_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An authenticated operator: the actor for the audit log and the role for the permission check. */
export interface OperatorPrincipal extends Actor {
  kind: 'operator';
  operatorId: string;
  role: string;
}

/** Why a token was refused; the client sees one 401 whatever the reason. */
export type TokenRefusal = 'malformed' | 'unknown' | 'mismatch' | 'revoked' | 'expired' | 'disabled';

/**
 * Operators and their personal tokens (issue #18): create, change role or name, disable (which
 * also revokes their tokens), issue (secret shown once), list, revoke; and authentication of a
 * bearer token, read from the database on every request so a revoke or a disable counts at once.
 */
@Injectable()
export class OperatorsService {
  constructor(private readonly repo: OperatorRepository, @Inject(CLOCK) private readonly now: () => Date) {}

  list(): Promise<Operator[]> {
    return this.repo.list();
  }

  async get(id: string): Promise<Operator> {
    const op = UUID.test(id) ? await this.repo.find(id) : null;
    if (!op) throw operatorNotFound(id);
    return op;
  }

  create(input: { email: string; name: string; role: Role }): Promise<Operator> {
    const email = input.email.trim();
    return this.repo.transaction(async (m) => {
      if (await this.repo.emailTaken(email, m)) throw operatorEmailTaken(email);
      const op = await this.repo.insert({ id: randomUUID(), email, name: input.name, role: input.role }, m).catch((err: unknown) => {
        if ((err as { code?: string }).code === '23505') throw operatorEmailTaken(email); // a concurrent create won
        throw err;
      });
      await this.repo.audit('operator_created', { operatorId: op.id, email: op.email, role: op.role }, m);
      return op;
    });
  }

  /** The operator with this email, compared case-insensitively (single sign-on matches by it), or null. */
  findByEmail(email: string): Promise<Operator | null> {
    return this.repo.findByEmail(email.trim());
  }

  /**
   * Creates an operator on their first single sign-on (CONSOLE_OIDC_DEFAULT_ROLE). Audited as
   * `operator_created` with cause `system`/`console-sso` (actor `system`: no operator was signed in),
   * the issuer and subject in its detail. A concurrent first sign-in of the same email gets the same operator.
   */
  async provisionFromSso(input: { email: string; name: string; role: Role; issuer: string; subject: string }): Promise<Operator> {
    const email = input.email.trim();
    const made = await this.repo.transaction(async (m) => {
      if (await this.repo.emailTaken(email, m)) return null;
      const op = await this.repo.insert({ id: randomUUID(), email, name: input.name, role: input.role }, m);
      await this.repo.audit('operator_created', { operatorId: op.id, email: op.email, role: op.role, via: 'sso', issuer: input.issuer, subject: input.subject }, m, { causeType: 'system', causeId: 'console-sso' });
      return op;
    }).catch((err: unknown) => {
      if ((err as { code?: string }).code === '23505') return null; // a concurrent sign-in won
      throw err;
    });
    return made ?? (await this.repo.findByEmail(email)) ?? Promise.reject(new Error(`operator ${email} vanished during sign-in`));
  }

  update(id: string, changes: { role?: Role; name?: string; disabled?: boolean }): Promise<Operator> {
    if (!UUID.test(id)) throw operatorNotFound(id);
    return this.repo.transaction(async (m) => {
      const op = await this.repo.findForUpdate(id, m);
      if (!op) throw operatorNotFound(id);
      const next: { role?: string; name?: string; disabledAt?: Date | null } = {};
      if (changes.role !== undefined && changes.role !== op.role) {
        next.role = changes.role;
        await this.repo.audit('operator_role_changed', { operatorId: id, email: op.email, from: op.role, to: changes.role }, m);
      }
      if (changes.name !== undefined && changes.name !== op.name) {
        next.name = changes.name;
        await this.repo.audit('operator_renamed', { operatorId: id, email: op.email, from: op.name, to: changes.name }, m);
      }
      if (changes.disabled === true && !op.disabledAt) {
        const at = this.now();
        next.disabledAt = at;
        const revokedTokens = await this.repo.revokeAllTokens(id, at, m);
        await this.repo.audit('operator_disabled', { operatorId: id, email: op.email, revokedTokens }, m);
      } else if (changes.disabled === false && op.disabledAt) {
        next.disabledAt = null;
        await this.repo.audit('operator_enabled', { operatorId: id, email: op.email }, m);
      }
      return Object.keys(next).length ? this.repo.update(id, next, m) : op;
    });
  }

  async tokens(operatorId: string): Promise<OperatorToken[]> {
    await this.get(operatorId);
    return this.repo.tokens(operatorId);
  }

  issueToken(operatorId: string, input: { name: string; expiresInDays: number }): Promise<{ record: OperatorToken; token: string }> {
    if (!UUID.test(operatorId)) throw operatorNotFound(operatorId);
    return this.repo.transaction(async (m) => {
      const op = await this.repo.findForUpdate(operatorId, m);
      if (!op) throw operatorNotFound(operatorId);
      if (op.disabledAt) throw operatorDisabled(operatorId);
      const now = this.now();
      const live = (await this.repo.tokens(operatorId)).filter((t) => !t.revokedAt && t.expiresAt > now).length;
      if (live >= MAX_LIVE_TOKENS_PER_OPERATOR) throw tooManyOperatorTokens(MAX_LIVE_TOKENS_PER_OPERATOR);
      const g = generateOperatorToken();
      const record = await this.repo.insertToken({ id: randomUUID(), operatorId, name: input.name, prefix: g.prefix, hash: g.hash, expiresAt: new Date(now.getTime() + input.expiresInDays * DAY_MS) }, m);
      await this.repo.audit('operator_token_created', { operatorId, email: op.email, tokenId: record.id, prefix: displayPrefix(record.prefix), name: input.name, expiresAt: record.expiresAt.toISOString() }, m);
      return { record, token: g.token };
    });
  }

  /** Revoking a revoked token changes nothing. */
  revokeToken(operatorId: string, tokenId: string): Promise<OperatorToken> {
    if (!UUID.test(operatorId)) throw operatorNotFound(operatorId);
    return this.repo.transaction(async (m) => {
      const op = await this.repo.findForUpdate(operatorId, m);
      if (!op) throw operatorNotFound(operatorId);
      const t = UUID.test(tokenId) ? await this.repo.findToken(operatorId, tokenId, m) : null;
      if (!t) throw operatorTokenNotFound(tokenId);
      if (t.revokedAt) return t;
      await this.repo.revokeToken(t.id, this.now(), m);
      await this.repo.audit('operator_token_revoked', { operatorId, email: op.email, tokenId: t.id, prefix: displayPrefix(t.prefix) }, m);
      return (await this.repo.findToken(operatorId, tokenId, m)) as OperatorToken;
    });
  }

  /** The operator a bearer token belongs to, or why it is refused. */
  async authenticate(token: string): Promise<{ ok: true; principal: OperatorPrincipal } | { ok: false; reason: TokenRefusal }> {
    const prefix = operatorTokenPrefix(token);
    if (!prefix) return { ok: false, reason: 'malformed' };
    const c = await this.repo.credential(prefix);
    if (!c) return { ok: false, reason: 'unknown' };
    if (!operatorTokenMatches(token, c.hash)) return { ok: false, reason: 'mismatch' };
    return this.principalOf(c);
  }

  /**
   * The operator behind a console session, by the prefix of the token they signed in with: the
   * same checks as {@link authenticate} once the secret has matched, read again on every request so
   * a revoked or expired token or a disabled operator ends the session at once.
   */
  async sessionPrincipal(prefix: string): Promise<{ ok: true; principal: OperatorPrincipal } | { ok: false; reason: TokenRefusal }> {
    const c = await this.repo.credential(prefix);
    return c ? this.principalOf(c) : { ok: false, reason: 'unknown' };
  }

  private principalOf(c: NonNullable<Awaited<ReturnType<OperatorRepository['credential']>>>): { ok: true; principal: OperatorPrincipal } | { ok: false; reason: TokenRefusal } {
    const now = this.now();
    if (c.revokedAt) return { ok: false, reason: 'revoked' };
    if (c.expiresAt <= now) return { ok: false, reason: 'expired' };
    if (c.disabledAt) return { ok: false, reason: 'disabled' };
    if (!c.lastUsedAt || now.getTime() - c.lastUsedAt.getTime() >= TOUCH_EVERY_MS) {
      // Best effort: a failed bookkeeping write must not refuse a valid token.
      this.repo.touchToken(c.tokenId, now).catch(() => undefined);
    }
    return { ok: true, principal: { kind: 'operator', operatorId: c.operatorId, email: c.email, role: c.role, tokenId: c.tokenId, tokenPrefix: displayPrefix(c.prefix) } };
  }

  auditLog(q: { limit: number; beforeId?: string; operatorId?: string; tenantId?: string }) {
    return this.repo.auditLog(q);
  }
}

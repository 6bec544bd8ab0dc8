import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { BREAK_GLASS } from '../common/actor-context';
import { Caller, CallerVerifier } from '../common/caller-verifier';
import { CLOCK, CONFIG } from '../common/tokens';
import { consoleOidc, ControlPlaneConfig } from '../config';
import { OperatorsService } from '../operators/operators.service';
import { ConsoleSessionRepository, ConsoleSessionRow, SessionKind } from './console-session.repository';
import { needsTouch, sessionState } from './console-session.policy';

export const SESSION_COOKIE = 'silo_console';
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface ConsoleSession {
  id: string;
  csrfToken: string;
  caller: Caller;
  expiresAt: Date;
}

/**
 * Console sign-in with a personal token or ADMIN_TOKEN, or by single sign-on (issue #18 item 2; oidc.service.ts). The
 * session id (256 random bits) lives only in the browser's cookie; the table keeps its SHA-256 and
 * the session's CSRF token. Every request reads the session and then the operator's token again, so
 * a sign-out, an idle or absolute timeout, a revoked or expired token, a disabled operator, a
 * changed role or a changed ADMIN_TOKEN counts from the next request.
 */
@Injectable()
export class ConsoleSessionService {
  readonly idleMs: number;
  readonly maxMs: number;
  /** Whether the sign-in page offers single sign-on (CONSOLE_OIDC_* set; oidc.service.ts). */
  readonly ssoEnabled: boolean;

  constructor(
    private readonly repo: ConsoleSessionRepository,
    private readonly verifier: CallerVerifier,
    private readonly operators: OperatorsService,
    @Inject(CONFIG) config: ControlPlaneConfig,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {
    this.idleMs = config.CONSOLE_SESSION_IDLE_MINUTES * 60_000;
    this.maxMs = config.CONSOLE_SESSION_MAX_HOURS * 3_600_000;
    this.ssoEnabled = consoleOidc(config) !== null;
  }

  /** A new session for a valid credential (the cookie value is `sessionId`), or null. */
  async signIn(token: string): Promise<(ConsoleSession & { sessionId: string }) | null> {
    const caller = await this.verifier.verify(token.trim());
    if (!caller) return null;
    return this.create(caller, caller.actor.kind === 'operator' ? 'operator' : 'break-glass');
  }

  /**
   * A new session for an operator whom single sign-on vouched for (oidc.service.ts matched or
   * provisioned them), or null when they are disabled. Kind `sso`: it keeps only the operator, whose
   * row is read again on every request, so disabling them ends it.
   */
  async signInSso(operatorId: string): Promise<(ConsoleSession & { sessionId: string }) | null> {
    const caller = await this.ssoCaller(operatorId);
    return caller ? this.create(caller, 'sso') : null;
  }

  private async create(caller: Caller, kind: SessionKind): Promise<ConsoleSession & { sessionId: string }> {
    const now = this.now();
    const sessionId = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const expiresAt = new Date(now.getTime() + this.maxMs);
    const id = randomUUID();
    await this.repo.insert({
      id, hash: sha256(sessionId), csrfToken, kind,
      operatorId: kind === 'break-glass' ? null : caller.actor.operatorId,
      tokenId: kind === 'operator' ? caller.actor.tokenId : null,
      tokenPrefix: kind === 'operator' ? caller.actor.tokenPrefix : null,
      breakGlassFingerprint: kind === 'break-glass' ? this.verifier.breakGlassFingerprint() : null,
      now, expiresAt,
    });
    await this.repo.prune(new Date(now.getTime() - 86_400_000)).catch(() => undefined); // housekeeping only: a day after expiry
    return { id, sessionId, csrfToken, caller, expiresAt };
  }

  /** The live session behind a cookie value (its idle clock restarted unless `touch: false`), or null (unknown, signed out, timed out, or its credential no longer valid). */
  async resolve(sessionId: string | undefined, opts: { touch?: boolean } = {}): Promise<ConsoleSession | null> {
    if (!sessionId || !SESSION_ID.test(sessionId)) return null;
    const s = await this.repo.findByHash(sha256(sessionId));
    if (!s) return null;
    const now = this.now();
    if (sessionState(s, now, this.idleMs) !== 'live') return null;
    const caller = await this.callerOf(s);
    if (!caller) {
      await this.repo.end(s.id, now);
      return null;
    }
    // The console's polling passes touch: false, so an open tab alone does not keep a session alive.
    if (opts.touch !== false && needsTouch(s, now)) await this.repo.touch(s.id, now);
    return { id: s.id, csrfToken: s.csrfToken, caller, expiresAt: s.expiresAt };
  }

  async signOut(sessionId: string | undefined): Promise<void> {
    const s = await this.resolve(sessionId);
    if (s) await this.repo.end(s.id, this.now());
  }

  /** Constant-time check of the CSRF token a state-changing request sent. */
  csrfMatches(session: ConsoleSession, sent: unknown): boolean {
    if (typeof sent !== 'string') return false;
    const a = createHash('sha256').update(sent).digest();
    const b = createHash('sha256').update(session.csrfToken).digest();
    return timingSafeEqual(a, b);
  }

  private async callerOf(s: ConsoleSessionRow): Promise<Caller | null> {
    if (s.kind === 'break-glass') {
      const fp = this.verifier.breakGlassFingerprint();
      return s.breakGlassFingerprint && s.breakGlassFingerprint.length === fp.length && timingSafeEqual(Buffer.from(s.breakGlassFingerprint), Buffer.from(fp)) ? { actor: BREAK_GLASS, role: '*' } : null;
    }
    if (s.kind === 'sso') return s.operatorId ? this.ssoCaller(s.operatorId) : null;
    const prefix = s.tokenPrefix?.replace(/^silo_op_/, '');
    if (!prefix) return null;
    const auth = await this.operators.sessionPrincipal(prefix);
    if (!auth.ok || auth.principal.tokenId !== s.tokenId) return null;
    const p = auth.principal;
    return { actor: { kind: 'operator', operatorId: p.operatorId, email: p.email, tokenId: p.tokenId, tokenPrefix: p.tokenPrefix }, role: p.role };
  }

  /** An operator signed in by SSO acts as themselves, with no token (the audit log's tokenId is null). */
  private async ssoCaller(operatorId: string): Promise<Caller | null> {
    const op = await this.operators.get(operatorId).catch(() => null);
    if (!op || op.disabledAt) return null;
    return { actor: { kind: 'operator', operatorId: op.id, email: op.email, tokenId: null, tokenPrefix: null }, role: op.role };
  }
}

/** The session cookie's value from a Cookie header, if any. */
export function sessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === SESSION_COOKIE) return part.slice(i + 1).trim();
  }
  return undefined;
}

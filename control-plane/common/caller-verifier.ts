import { Inject, Injectable } from '@nestjs/common';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ControlPlaneConfig } from '../config';
import { OperatorsService } from '../operators/operators.service';
import { Actor, BREAK_GLASS } from './actor-context';
import { CONFIG } from './tokens';

/** Who a credential belongs to: the audit log's actor and the role whose permissions apply (`*`: break-glass, every permission). */
export interface Caller {
  actor: Actor;
  role: string | '*';
}

/**
 * Checks a secret an operator presents: ADMIN_TOKEN (break-glass) or a personal token. Used by
 * AdminAuthGuard for `Authorization: Bearer` and by the console's sign-in, so both accept exactly
 * the same credentials.
 */
@Injectable()
export class CallerVerifier {
  private readonly expected: Buffer;
  private readonly adminToken: string;

  constructor(@Inject(CONFIG) config: ControlPlaneConfig, private readonly operators: OperatorsService) {
    this.adminToken = config.ADMIN_TOKEN;
    this.expected = createHash('sha256').update(config.ADMIN_TOKEN).digest();
  }

  /** The caller, or null for an unknown, malformed, expired or revoked token or a disabled operator. */
  async verify(token: string): Promise<Caller | null> {
    // Digests are compared so length differences leak nothing.
    if (timingSafeEqual(createHash('sha256').update(token).digest(), this.expected)) return { actor: BREAK_GLASS, role: '*' };
    const auth = await this.operators.authenticate(token);
    if (!auth.ok) return null;
    const { principal: p } = auth;
    return { actor: { kind: 'operator', operatorId: p.operatorId, email: p.email, tokenId: p.tokenId, tokenPrefix: p.tokenPrefix }, role: p.role };
  }

  /** A fingerprint of ADMIN_TOKEN (HMAC, not the token): a break-glass session stores it and ends when ADMIN_TOKEN changes. */
  breakGlassFingerprint(): string {
    return createHmac('sha256', this.adminToken).update('silo console break-glass session').digest('hex');
  }
}

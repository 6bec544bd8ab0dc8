import { Inject, Injectable } from '@nestjs/common';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BaseClient, custom, errors, generators, Issuer, TokenSet, UserinfoResponse } from 'openid-client';
import type { Logger } from '../../common/logger';
import { CLOCK, CONFIG, LOGGER } from '../common/tokens';
import { consoleOidc, ConsoleOidcConfig, ControlPlaneConfig } from '../config';
import type { Operator } from '../operators/operator.entity';
import { OperatorsService } from '../operators/operators.service';
import { ConsoleSession, ConsoleSessionService } from './console-session.service';
import { OidcSignInError } from './oidc.errors';

/** How long a started sign-in may take at the provider. */
export const OIDC_STATE_TTL_MS = 10 * 60_000;
const SCOPE = 'openid email profile';

interface PendingSignIn {
  state: string;
  nonce: string;
  verifier: string;
  /** Expiry, epoch ms. */
  exp: number;
}

/**
 * Console single sign-on with OpenID Connect (issue #18 item 2): authorization code with PKCE
 * (S256), state and nonce, through `openid-client`, which also checks the id_token (signature,
 * issuer, audience, nonce, expiry). The pending sign-in (state, nonce, code verifier) travels in a
 * short-lived httpOnly cookie signed with an HMAC keyed by the client secret, so any replica can
 * finish it. The operator is matched by verified email (case-insensitively), or created with
 * CONSOLE_OIDC_DEFAULT_ROLE when that is set; the session is ConsoleSessionService's, kind `sso`.
 */
@Injectable()
export class OidcService {
  private readonly config: ConsoleOidcConfig | null;
  private readonly stateKey: Buffer | null;
  private client: Promise<BaseClient> | null = null;

  constructor(
    @Inject(CONFIG) config: ControlPlaneConfig,
    private readonly operators: OperatorsService,
    private readonly sessions: ConsoleSessionService,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {
    this.config = consoleOidc(config);
    this.stateKey = this.config ? createHmac('sha256', this.config.clientSecret).update('silo console oidc state').digest() : null;
  }

  get enabled(): boolean {
    return this.config !== null;
  }

  /** Where to send the browser, and the signed cookie value that remembers this attempt. */
  async begin(): Promise<{ url: string; pending: string }> {
    const client = await this.discovered();
    const p: PendingSignIn = { state: generators.state(), nonce: generators.nonce(), verifier: generators.codeVerifier(), exp: this.now().getTime() + OIDC_STATE_TTL_MS };
    const url = client.authorizationUrl({ scope: SCOPE, state: p.state, nonce: p.nonce, code_challenge: generators.codeChallenge(p.verifier), code_challenge_method: 'S256' });
    return { url, pending: this.sign(p) };
  }

  /** Finishes a sign-in from the provider's redirect (`callbackUrl`: the request's path and query); throws OidcSignInError. */
  async complete(callbackUrl: string, pendingCookie: string | undefined): Promise<ConsoleSession & { sessionId: string }> {
    const cfg = this.configured();
    const pending = this.verify(pendingCookie);
    const client = await this.discovered();
    const params = client.callbackParams(callbackUrl);
    if (!pending || typeof params.state !== 'string' || !same(params.state, pending.state)) throw new OidcSignInError('SSO_STATE_INVALID');
    if (params.error) {
      this.logger.warn({ error: params.error, description: params.error_description }, 'console sso: the provider refused the sign-in');
      throw new OidcSignInError('SSO_DENIED');
    }
    let tokens: TokenSet;
    let claims: { sub: string; email?: unknown; email_verified?: unknown; name?: unknown };
    try {
      tokens = await client.callback(cfg.redirectUrl, params, { state: pending.state, nonce: pending.nonce, code_verifier: pending.verifier, response_type: 'code' });
      claims = tokens.claims();
      // Many providers put email only in userinfo for the code flow; openid-client checks its sub against the id_token's.
      if (claims.email === undefined) {
        const info: UserinfoResponse = await client.userinfo(tokens);
        claims = { ...claims, email: info.email, email_verified: info.email_verified, name: claims.name ?? info.name };
      }
    } catch (err) {
      this.logger.warn({ err: safeError(err) }, 'console sso: the code exchange or the id_token check failed');
      throw new OidcSignInError(err instanceof errors.OPError || err instanceof errors.RPError ? 'SSO_FAILED' : 'SSO_UNAVAILABLE', err);
    }
    if (typeof claims.email !== 'string' || claims.email_verified !== true) throw new OidcSignInError('SSO_EMAIL_UNVERIFIED');
    const op = await this.operatorFor(cfg, claims.email, typeof claims.name === 'string' ? claims.name : '', claims.sub);
    const session = await this.sessions.signInSso(op.id);
    if (!session) throw new OidcSignInError('SSO_OPERATOR_DISABLED');
    return session;
  }

  private async operatorFor(cfg: ConsoleOidcConfig, email: string, name: string, subject: string): Promise<Operator> {
    const existing = await this.operators.findByEmail(email);
    if (existing) {
      if (existing.disabledAt) throw new OidcSignInError('SSO_OPERATOR_DISABLED');
      return existing;
    }
    if (!cfg.defaultRole || email.length > 254) throw new OidcSignInError('SSO_UNKNOWN_OPERATOR');
    return this.operators.provisionFromSso({ email, name: (name.trim() || email).slice(0, 200), role: cfg.defaultRole, issuer: cfg.issuer, subject });
  }

  private configured(): ConsoleOidcConfig {
    if (!this.config) throw new OidcSignInError('SSO_NOT_CONFIGURED');
    return this.config;
  }

  /** Discovery on first use, kept once it worked (a failure is retried on the next sign-in). */
  private discovered(): Promise<BaseClient> {
    const cfg = this.configured();
    if (!this.client) {
      this.client = Issuer.discover(cfg.issuer).then((issuer) => {
        const client = new issuer.Client({ client_id: cfg.clientId, client_secret: cfg.clientSecret, redirect_uris: [cfg.redirectUrl], response_types: ['code'] });
        client[custom.clock_tolerance] = 5;
        return client;
      });
      this.client.catch((err: unknown) => {
        this.client = null;
        this.logger.error({ err: safeError(err), issuer: cfg.issuer }, 'console sso: OpenID discovery failed');
      });
    }
    return this.client.catch((err: unknown) => {
      throw new OidcSignInError('SSO_UNAVAILABLE', err);
    });
  }

  private sign(p: PendingSignIn): string {
    const body = Buffer.from(JSON.stringify(p)).toString('base64url');
    return `${body}.${createHmac('sha256', this.stateKey as Buffer).update(body).digest('base64url')}`;
  }

  private verify(value: string | undefined): PendingSignIn | null {
    if (!value || !this.stateKey) return null;
    const [body, mac] = value.split('.');
    if (!body || !mac || !same(mac, createHmac('sha256', this.stateKey).update(body).digest('base64url'))) return null;
    try {
      const p = JSON.parse(Buffer.from(body, 'base64url').toString()) as PendingSignIn;
      return typeof p.state === 'string' && typeof p.nonce === 'string' && typeof p.verifier === 'string' && p.exp > this.now().getTime() ? p : null;
    } catch {
      return null;
    }
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What is logged of a failure: its class and message (openid-client's never carry the client secret), not request options. */
function safeError(err: unknown): { name: string; message: string } {
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'unknown', message: String(err) };
}

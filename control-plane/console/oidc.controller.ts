import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Logger } from '../../common/logger';
import { LOGGER } from '../common/tokens';
import { ConsoleSessionService, SESSION_COOKIE } from './console-session.service';
import { html } from './html';
import { pageHeaders } from './page-headers';
import { OidcSignInError } from './oidc.errors';
import { OIDC_STATE_TTL_MS, OidcService } from './oidc.service';
import { layout, loginPage } from './views';

const PENDING_COOKIE = 'silo_console_oidc';

/**
 * The console's single sign-on routes (issue #18 item 2). `login` sends the browser to the
 * provider; `callback` finishes there, sets the same session cookie as token sign-in and continues
 * to the console. A refusal is the sign-in page with a stable message (and its code), never the
 * provider's error or a stack trace.
 */
@ApiExcludeController()
@Controller('console/oidc')
export class OidcController {
  constructor(private readonly oidc: OidcService, private readonly sessions: ConsoleSessionService, @Inject(LOGGER) private readonly logger: Logger) {}

  @Get('login')
  async login(@Req() req: Request, @Res() res: Response): Promise<void> {
    try {
      const { url, pending } = await this.oidc.begin();
      // SameSite=Lax: the provider's redirect back is a cross-site top-level GET, which Strict would strip it from.
      res.setHeader('set-cookie', `${PENDING_COOKIE}=${pending}; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age=${OIDC_STATE_TTL_MS / 1000}${secure(req) ? '; Secure' : ''}`);
      pageHeaders(res);
      res.redirect(303, url);
    } catch (err) {
      this.refuse(res, err);
    }
  }

  @Get('callback')
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const clearPending = `${PENDING_COOKIE}=; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age=0${secure(req) ? '; Secure' : ''}`;
    try {
      const session = await this.oidc.complete(req.originalUrl, cookieValue(req.headers.cookie, PENDING_COOKIE));
      res.setHeader('set-cookie', [
        clearPending,
        `${SESSION_COOKIE}=${session.sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(this.sessions.maxMs / 1000)}${secure(req) ? '; Secure' : ''}`,
      ]);
      // A page that moves on by itself rather than a 303: after the provider's cross-site redirect,
      // a browser may keep the new SameSite=Strict cookie off a redirect in the same chain.
      pageHeaders(res);
      res.status(200).type('html').send(layout('Signed in', html`<meta http-equiv="refresh" content="0;url=/console/tenants"><section class="card narrow"><h1>Signed in</h1><p><a href="/console/tenants">Continue to the console</a></p></section>`, null).value);
    } catch (err) {
      res.setHeader('set-cookie', clearPending);
      this.refuse(res, err);
    }
  }

  private refuse(res: Response, err: unknown): void {
    if (!(err instanceof OidcSignInError)) {
      this.logger.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err) }, 'console sso: unexpected failure');
    }
    const e = err instanceof OidcSignInError ? err : new OidcSignInError('SSO_FAILED');
    pageHeaders(res);
    res.status(e.status).type('html').send(loginPage(`${e.message} (${e.code})`, this.oidc.enabled).value);
  }
}

function secure(req: Request): boolean {
  return req.secure || req.protocol === 'https';
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}


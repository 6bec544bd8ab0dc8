import type { Response } from 'express';

/** Console pages load only their own script and style, are never framed and never cached. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The headers every console page (and the sign-in pages) is sent with. */
export function pageHeaders(res: Response): void {
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'same-origin');
}

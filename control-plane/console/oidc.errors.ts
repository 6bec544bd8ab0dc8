/** Why a single sign-on was refused: the code and the message the sign-in page shows (never the provider's raw error). */
export const OIDC_REFUSALS = {
  SSO_NOT_CONFIGURED: { status: 404, message: 'Single sign-on is not configured on this installation.' },
  SSO_UNAVAILABLE: { status: 503, message: 'Single sign-on is unavailable: the identity provider could not be reached. Try again, or sign in with a token.' },
  SSO_STATE_INVALID: { status: 400, message: 'That sign-in link has expired or was not started here. Start again with "Sign in with SSO".' },
  SSO_DENIED: { status: 401, message: 'The identity provider did not sign you in.' },
  SSO_FAILED: { status: 401, message: 'Single sign-on failed: the identity provider\'s answer could not be verified.' },
  SSO_EMAIL_UNVERIFIED: { status: 403, message: 'Your identity provider does not say your email address is verified, so it cannot be matched to an operator.' },
  SSO_UNKNOWN_OPERATOR: { status: 403, message: 'No operator has this email address. Ask an admin to add you.' },
  SSO_OPERATOR_DISABLED: { status: 403, message: 'This operator is disabled.' },
} as const;

export type OidcRefusalCode = keyof typeof OIDC_REFUSALS;

export class OidcSignInError extends Error {
  readonly status: number;
  constructor(readonly code: OidcRefusalCode, cause?: unknown) {
    super(OIDC_REFUSALS[code].message, { cause });
    this.status = OIDC_REFUSALS[code].status;
  }
}

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export { apiKeyScramParams, SCRAM_ITERATIONS, scramVerifier } from '../../common/api-key-format';
export type { ScramVerifier } from '../../common/api-key-format';

/**
 * The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, as a pure core:
 * message text in, decision and message text out; the only randomness is the server nonce, and it
 * is injectable. The front door wraps these in AuthenticationSASL / SASLContinue / SASLFinal.
 *
 * Differences from PostgreSQL's own server: the password is one of several API keys of a tenant, so
 * the client's proof is checked against a list of verifiers (all sharing one salt and iteration
 * count, sent before the key is known); channel binding (SCRAM-SHA-256-PLUS) is not offered, so a
 * client asking for it (`p=`) is refused, and `y` (client could bind, server did not offer) is
 * accepted. If PLUS is ever offered, `y` must be refused instead (downgrade detection, RFC 5802 §6).
 * The user name inside the SCRAM message is ignored, as PostgreSQL does (it takes the startup one).
 */

/** The mechanism name in AuthenticationSASL and SASLInitialResponse. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** One key the proof may have been made with. */
export interface ScramCandidate {
  id: string;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramFailureReason =
  /** Not a SCRAM message (bad syntax, missing attribute, bad base64, wrong proof length, too long). */
  | 'malformed'
  /** The client asked for channel binding, or its `c=` does not repeat its gs2 header. */
  | 'channel-binding'
  /** An authorization identity (`a=`) or a mandatory extension (`m=`): PostgreSQL refuses both too. */
  | 'unsupported'
  /** The client-final nonce is not the client + server nonce of this exchange. */
  | 'nonce-mismatch'
  /** Well-formed, but no candidate key made this proof (wrong, revoked, other tenant's key). */
  | 'invalid-proof';

/**
 * A refused step. `message` is safe to send (no key material, nothing about the candidates);
 * `sqlState` is PostgreSQL's for the case: 08P01 for protocol violations, 28P01 for a wrong proof.
 */
export interface ScramFailure {
  ok: false;
  reason: ScramFailureReason;
  sqlState: '08P01' | '28P01';
  message: string;
}

/** What the client-final step needs from the first step. Plain data, safe to keep per connection. */
export interface ScramExchange {
  /** The gs2 header exactly as the client sent it (`n,,` or `y,,`). */
  gs2Header: string;
  clientFirstBare: string;
  serverFirst: string;
  /** Client nonce + server nonce. */
  nonce: string;
}

export type ScramServerFirstResult = { ok: true; exchange: ScramExchange; message: string } | ScramFailure;
export type ScramServerFinalResult = { ok: true; id: string; message: string } | ScramFailure;

export interface ScramServerFirstParams {
  salt: Buffer;
  iterations: number;
  /** The server's nonce part: printable ASCII without ','. Default: 18 random bytes, base64 (as PostgreSQL). */
  serverNonce?: () => string;
}

/** Longer SCRAM messages are refused (libpq's are ~100 bytes; the wire layer bounds messages too). */
export const SCRAM_MAX_MESSAGE_BYTES = 4096;

const PROOF_BYTES = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 `printable`: %x21-2B / %x2D-7E. */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const ATTRIBUTE = /^[A-Za-z]=/;

/** Step 1: the client-first message (SASLInitialResponse data) in, the server-first message out. */
export function scramServerFirst(clientFirst: Buffer | string, params: ScramServerFirstParams): ScramServerFirstResult {
  try {
    const text = decode(clientFirst);
    if (typeof text !== 'string') return text;
    const header = /^([^,]*),([^,]*),/.exec(text);
    if (!header) return malformed('missing gs2 header');
    const [gs2Header, flag, authzid] = header as unknown as [string, string, string];
    if (flag.startsWith('p=')) return fail('channel-binding', '08P01', 'channel binding is not supported: this server offers SCRAM-SHA-256 without channel binding (not SCRAM-SHA-256-PLUS)');
    if (flag !== 'n' && flag !== 'y') return malformed('unexpected channel binding flag');
    if (authzid !== '') {
      return authzid.startsWith('a=') ? fail('unsupported', '08P01', 'client uses authorization identity, but it is not supported') : malformed('unexpected attribute in gs2 header');
    }
    const clientFirstBare = text.slice(gs2Header.length);
    const attrs = clientFirstBare.split(',');
    if (attrs[0]?.startsWith('m=')) return fail('unsupported', '08P01', 'client requires an unsupported SCRAM extension');
    if (!attrs[0]?.startsWith('n=')) return malformed('expected attribute "n"');
    const clientNonce = attrs[1]?.startsWith('r=') ? attrs[1].slice(2) : null;
    if (clientNonce === null) return malformed('expected attribute "r"');
    if (!PRINTABLE.test(clientNonce)) return malformed('nonce is not printable');
    if (!attrs.slice(2).every((a) => ATTRIBUTE.test(a))) return malformed('malformed extension attribute');
    const serverNonce = (params.serverNonce ?? defaultServerNonce)();
    const nonce = clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${params.salt.toString('base64')},i=${params.iterations}`;
    return { ok: true, exchange: { gs2Header, clientFirstBare, serverFirst, nonce }, message: serverFirst };
  } catch {
    return malformed('unreadable');
  }
}

/**
 * Step 2: the client-final message (SASLResponse data) checked against every candidate. On a match,
 * its id and the server-final message (`v=` ServerSignature, sent in AuthenticationSASLFinal).
 * Every candidate is tried (no early exit), each compared with timingSafeEqual.
 */
export function scramServerFinal(exchange: ScramExchange, clientFinal: Buffer | string, candidates: readonly ScramCandidate[]): ScramServerFinalResult {
  try {
    const text = decode(clientFinal);
    if (typeof text !== 'string') return text;
    const attrs = text.split(',');
    const binding = attrs[0]?.startsWith('c=') ? attrs[0].slice(2) : null;
    if (binding === null) return malformed('expected attribute "c"');
    if (!BASE64.test(binding)) return malformed('channel binding is not base64');
    const nonce = attrs[1]?.startsWith('r=') ? attrs[1].slice(2) : null;
    if (nonce === null) return malformed('expected attribute "r"');
    const last = attrs[attrs.length - 1] as string;
    if (attrs.length < 3 || !last.startsWith('p=')) return malformed('expected attribute "p" at the end');
    if (!attrs.slice(2, -1).every((a) => ATTRIBUTE.test(a) && !a.startsWith('p='))) return malformed('malformed extension attribute');
    const proofText = last.slice(2);
    if (!BASE64.test(proofText)) return malformed('proof is not base64');
    const proof = Buffer.from(proofText, 'base64');
    if (proof.length !== PROOF_BYTES) return malformed('proof has the wrong length');

    const boundHeader = Buffer.from(binding, 'base64').toString('latin1');
    if (boundHeader !== exchange.gs2Header) {
      return boundHeader.startsWith('p=')
        ? fail('channel-binding', '08P01', 'channel binding is not supported: this server offers SCRAM-SHA-256 without channel binding (not SCRAM-SHA-256-PLUS)')
        : fail('channel-binding', '08P01', 'SCRAM channel binding check failed');
    }
    if (!sameText(nonce, exchange.nonce)) return fail('nonce-mismatch', '08P01', 'SCRAM nonce mismatch');

    const withoutProof = attrs.slice(0, -1).join(',');
    const authMessage = `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
    let match: ScramCandidate | null = null;
    for (const c of candidates) {
      if (c.storedKey.length !== PROOF_BYTES) continue;
      const signature = hmac(c.storedKey, authMessage);
      const clientKey = xor(proof, signature);
      if (timingSafeEqual(createHash('sha256').update(clientKey).digest(), c.storedKey) && match === null) match = c;
    }
    if (!match) return fail('invalid-proof', '28P01', 'password authentication failed');
    return { ok: true, id: match.id, message: `v=${hmac(match.serverKey, authMessage).toString('base64')}` };
  } catch {
    return malformed('unreadable');
  }
}

function defaultServerNonce(): string {
  return randomBytes(18).toString('base64');
}

/** The message as text, or why it is refused. */
function decode(data: Buffer | string): string | ScramFailure {
  const size = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
  if (size > SCRAM_MAX_MESSAGE_BYTES) return malformed('too long');
  let text: string;
  try {
    text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return malformed('not valid UTF-8 text');
  }
  return text.includes('\0') ? malformed('contains a NUL byte') : text;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

function malformed(detail: string): ScramFailure {
  return fail('malformed', '08P01', `malformed SCRAM message: ${detail}`);
}

function fail(reason: ScramFailureReason, sqlState: ScramFailure['sqlState'], message: string): ScramFailure {
  return { ok: false, reason, sqlState, message };
}

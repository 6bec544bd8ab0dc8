/**
 * The PostgreSQL v3 wire protocol as far as the front door speaks it itself: the startup packets,
 * the few messages it writes, and a scanner that follows message boundaries in a relayed byte
 * stream without buffering message bodies. Pure: no sockets.
 */

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
export const PROTOCOL_3 = 196608;
/** Largest startup packet accepted (PostgreSQL's own limit is 10,000 bytes). */
export const MAX_STARTUP_BYTES = 10_000;

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; params: Record<string, string> }
  | { kind: 'invalid'; reason: string };

/** A complete startup-phase packet (length included), or null if `buf` holds only part of one. */
export function readStartupPacket(buf: Buffer): { packet: StartupPacket; size: number } | null {
  if (buf.length < 8) return null;
  const size = buf.readUInt32BE(0);
  if (size < 8 || size > MAX_STARTUP_BYTES) return { packet: { kind: 'invalid', reason: 'invalid length of startup packet' }, size: buf.length };
  if (buf.length < size) return null;
  const code = buf.readUInt32BE(4);
  if (code === SSL_REQUEST && size === 8) return { packet: { kind: 'ssl' }, size };
  if (code === GSSENC_REQUEST && size === 8) return { packet: { kind: 'gssenc' }, size };
  if (code === CANCEL_REQUEST && size === 16) return { packet: { kind: 'cancel', pid: buf.readUInt32BE(8), secret: buf.readUInt32BE(12) }, size };
  if (code !== PROTOCOL_3) return { packet: { kind: 'invalid', reason: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: the server supports 3.0` }, size };
  const params: Record<string, string> = {};
  const parts = buf.subarray(8, size).toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const k = parts[i] as string;
    if (!k) break;
    params[k] = parts[i + 1] as string;
  }
  return { packet: { kind: 'startup', params }, size };
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

export const authCleartext = (): Buffer => message('R', int32(3));
export const authSasl = (mechanisms: string[]): Buffer => message('R', Buffer.concat([int32(10), ...mechanisms.map(cstr), Buffer.from([0])]));
export const authSaslContinue = (data: string): Buffer => message('R', Buffer.concat([int32(11), Buffer.from(data, 'utf8')]));
export const authSaslFinal = (data: string): Buffer => message('R', Buffer.concat([int32(12), Buffer.from(data, 'utf8')]));

/** A SASLInitialResponse body: the mechanism and its data (null when malformed). */
export function saslInitial(body: Buffer): { mechanism: string; data: Buffer } | null {
  const end = body.indexOf(0);
  if (end === -1 || body.length < end + 5) return null;
  const length = body.readInt32BE(end + 1);
  const data = length < 0 ? Buffer.alloc(0) : body.subarray(end + 5, end + 5 + length);
  if (length >= 0 && data.length !== length) return null;
  return { mechanism: body.subarray(0, end).toString('utf8'), data };
}
export const authOk = (): Buffer => message('R', int32(0));
export const parameterStatus = (name: string, value: string): Buffer => message('S', Buffer.concat([cstr(name), cstr(value)]));
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => message('Z', Buffer.from(status, 'latin1'));

export function backendKeyData(pid: number, secret: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(pid >>> 0, 0);
  b.writeUInt32BE(secret >>> 0, 4);
  return message('K', b);
}

export interface WireError {
  severity: 'ERROR' | 'FATAL';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function errorResponse(e: WireError): Buffer {
  const fields: Buffer[] = [Buffer.from('S'), cstr(e.severity), Buffer.from('V'), cstr(e.severity), Buffer.from('C'), cstr(e.code), Buffer.from('M'), cstr(e.message)];
  if (e.detail) fields.push(Buffer.from('D'), cstr(e.detail));
  if (e.hint) fields.push(Buffer.from('H'), cstr(e.hint));
  fields.push(Buffer.from([0]));
  return message('E', Buffer.concat(fields));
}

/** The string of a PasswordMessage body. */
export function passwordOf(body: Buffer): string {
  const end = body.indexOf(0);
  return body.subarray(0, end === -1 ? body.length : end).toString('utf8');
}

/** `options` tokens (space-separated, `-c name=value` or `name=value`, `\ ` escapes a space) as a map. */
export function startupOptions(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  const tokens = raw.match(/(?:\\ |[^ ])+/g) ?? [];
  for (let i = 0; i < tokens.length; i++) {
    let t = (tokens[i] as string).replace(/\\ /g, ' ');
    if (t === '-c' && i + 1 < tokens.length) t = (tokens[++i] as string).replace(/\\ /g, ' ');
    else if (t.startsWith('-c')) t = t.slice(2);
    else if (t.startsWith('--')) t = t.slice(2);
    const eq = t.indexOf('=');
    if (eq > 0) out[t.slice(0, eq).replace(/-/g, '_')] = t.slice(eq + 1);
  }
  return out;
}

/** What the session decides per backend message: leave it out, and what to put right after it. */
export interface ScanHooks {
  /** A message of `type` starts: true leaves it out of the output. */
  drop(type: number): boolean;
  /** A message of `type` ended: bytes to insert after it, or null. */
  after(type: number): Buffer | null;
  /** A ParameterStatus or NotificationResponse went by (the session's state changed). */
  sessionChanged(): void;
}

/**
 * Follows the backend's message boundaries (1 type byte + int32 length) through a relayed stream,
 * holding at most a partial 5-byte header between chunks: reports each ReadyForQuery (its status
 * and where it ends in the output) and lets `hooks` leave messages out and insert others. Message
 * bodies are never buffered.
 */
export class BackendScanner {
  private held: Buffer = Buffer.alloc(0);
  private skip = 0;
  private type = 0;
  private dropping = false;
  private status = 'I';

  /** The bytes to relay, the ReadyForQuery messages ending in them, or a protocol error. */
  scan(input: Buffer, hooks: ScanHooks | null): { out: Buffer; ready: Array<{ status: string; end: number }>; error: string | null } {
    const chunk = this.held.length ? Buffer.concat([this.held, input]) : input;
    this.held = Buffer.alloc(0);
    const ready: Array<{ status: string; end: number }> = [];
    const pieces: Buffer[] = [];
    let outLength = 0;
    let from = 0; // start of the kept range not yet in `pieces`
    const cut = (to: number) => {
      if (to > from) {
        pieces.push(chunk.subarray(from, to));
        outLength += to - from;
      }
    };
    const ended = (at: number) => {
      if (this.dropping) from = at;
      if (this.type === 0x5a) {
        cut(at);
        from = at;
        ready.push({ status: this.status, end: outLength });
      }
      if (this.type === 0x53 || this.type === 0x41) hooks?.sessionChanged(); // 'S' ParameterStatus, 'A' NotificationResponse
      const extra = hooks?.after(this.type) ?? null;
      if (extra) {
        cut(at);
        from = at;
        pieces.push(extra);
        outLength += extra.length;
      }
      this.dropping = false;
    };
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        if (this.type === 0x5a && this.skip === 1) this.status = String.fromCharCode(chunk[i] as number);
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) ended(i);
        continue;
      }
      if (chunk.length - i < 5) {
        cut(i);
        from = chunk.length;
        this.held = Buffer.from(chunk.subarray(i));
        break;
      }
      const type = chunk[i] as number;
      const length = chunk.readUInt32BE(i + 1);
      if (length < 4) return { out: chunk, ready, error: `invalid message length ${length}` };
      this.type = type;
      this.dropping = hooks?.drop(type) ?? false;
      if (this.dropping) cut(i);
      i += 5;
      this.skip = length - 4;
      if (this.skip === 0) ended(i);
    }
    if (!this.dropping) cut(chunk.length);
    else from = chunk.length;
    const out = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
    return { out, ready, error: null };
  }

  /** Bytes of a partial header kept back (given to pg's parser when the backend goes back). */
  takeHeld(): Buffer {
    const h = this.held;
    this.held = Buffer.alloc(0);
    return h;
  }
}

/** statementNamed: more bytes are needed. */
export const NEED = Symbol('need');
/** statementNamed: a name longer than 1,024 bytes. */
export const TOO_LONG = Symbol('too long');
const MAX_NAME = 1024;

/**
 * The statement a Parse, Bind, Describe or Close message names (its bytes as latin1, so any name
 * maps to one string), from the start of its body: NEED when more bytes are needed, TOO_LONG past
 * 1,024 bytes (a portal's name too), null when the message names none (a portal, the unnamed statement).
 */
export function statementNamed(type: number, body: Buffer): string | null | typeof NEED | typeof TOO_LONG {
  const cstrAt = (at: number): { s: string; next: number } | typeof NEED | typeof TOO_LONG => {
    const end = body.indexOf(0, at);
    if (end === -1) return body.length - at > MAX_NAME ? TOO_LONG : NEED;
    if (end - at > MAX_NAME) return TOO_LONG;
    return { s: body.subarray(at, end).toString('latin1'), next: end + 1 };
  };
  const named = (n: ReturnType<typeof cstrAt>) => (typeof n === 'symbol' ? n : n.s || null);
  if (type === 0x50) return named(cstrAt(0)); // 'P' Parse: name, query...
  if (type === 0x42) { // 'B' Bind: portal, statement, ...
    const portal = cstrAt(0);
    return typeof portal === 'symbol' ? portal : named(cstrAt(portal.next));
  }
  if (type === 0x44 || type === 0x43) { // 'D' Describe / 'C' Close: 'S' | 'P', name
    if (body.length < 1) return NEED;
    if (body[0] !== 0x53) {
      const portal = cstrAt(1); // a portal's name: its length is capped too
      return portal === TOO_LONG ? TOO_LONG : null;
    }
    return named(cstrAt(1));
  }
  return null;
}

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

/**
 * Follows the backend's message boundaries (1 type byte + int32 length) through a relayed stream,
 * holding only a 5-byte header, and reports each ReadyForQuery: its transaction status and where it
 * ends in the chunk. Message bodies are never buffered (a 500 MB row passes through as it comes).
 */
export class ReadyScanner {
  private readonly header = Buffer.alloc(5);
  private have = 0;
  private skip = 0;
  private inReady = false;
  private status = 'I';

  /** The ReadyForQuery messages that end in `chunk`, or a protocol error. */
  scan(chunk: Uint8Array): { ready: Array<{ status: string; end: number }>; error: string | null } {
    const ready: Array<{ status: string; end: number }> = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        if (this.inReady) this.status = String.fromCharCode(chunk[i] as number);
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0 && this.inReady) {
          this.inReady = false;
          ready.push({ status: this.status, end: i });
        }
        continue;
      }
      this.header[this.have++] = chunk[i++] as number;
      if (this.have < 5) continue;
      this.have = 0;
      const length = this.header.readUInt32BE(1);
      if (length < 4) return { ready, error: `invalid message length ${length}` };
      this.skip = length - 4;
      this.inReady = this.header[0] === 0x5a && this.skip === 1; // 'Z'
    }
    return { ready, error: null };
  }
}

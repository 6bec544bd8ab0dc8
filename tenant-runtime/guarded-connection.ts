import { Client, ClientConfig, Connection } from 'pg';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { SiloError } from '../common/errors';
import { runtimeErrors } from './runtime-errors';

/**
 * Largest backend message other than result data (DataRow, CopyData) the runtime accepts: notices,
 * errors, notifications, row descriptions, parameter status. Real ones are far smaller (a
 * RowDescription of the 1,664-column maximum is ~140 KB; NOTIFY payloads stop at 8,000 bytes).
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const DATA_ROW = 0x44; // 'D'
const COPY_DATA = 0x64; // 'd'
const NAMES: Record<number, string> = {
  0x44: 'row', 0x64: 'COPY row', 0x4e: 'notice', 0x45: 'error', 0x41: 'notification', 0x54: 'row description', 0x53: 'parameter status',
};

/** What a request may still receive: `bytes` is decremented as result data arrives. */
export interface ResultAllowance {
  budget: { bytes: number };
  /** The request's whole byte cap (for the error message). */
  limit: number;
}

export type GuardViolation =
  | { kind: 'result'; limit: number }
  | { kind: 'message'; message: string; size: number; limit: number }
  | { kind: 'protocol' };

/**
 * Pure core: follows backend message boundaries (1 type byte + int32 length) as bytes pass, holding
 * nothing but a 5-byte header, and judges each message from its header, before pg buffers it.
 * Result data (DataRow, CopyData) is charged to the current request's allowance; with none attached
 * (internal statements) each such message is held to `maxMessageBytes` like every other message.
 */
export class MessageGuard {
  allowance: ResultAllowance | null = null;
  private readonly header = Buffer.alloc(5);
  private have = 0;
  private skip = 0;
  private tripped: GuardViolation | null = null;

  constructor(readonly maxMessageBytes = MAX_MESSAGE_BYTES) {}

  /** Scans a chunk: the first violation (then every later call returns it too), or null if the chunk may go to the parser. */
  scan(chunk: Uint8Array): GuardViolation | null {
    if (this.tripped) return this.tripped;
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header[this.have++] = chunk[i++] as number;
      if (this.have < 5) continue;
      this.have = 0;
      const code = this.header[0] as number;
      const length = this.header.readUInt32BE(1);
      const v = this.judge(code, length);
      if (v) return (this.tripped = v);
      this.skip = length - 4;
    }
    return null;
  }

  private judge(code: number, length: number): GuardViolation | null {
    if (length < 4) return { kind: 'protocol' };
    const body = length - 4;
    if ((code === DATA_ROW || code === COPY_DATA) && this.allowance) {
      this.allowance.budget.bytes -= body;
      return this.allowance.budget.bytes < 0 ? { kind: 'result', limit: this.allowance.limit } : null;
    }
    if (length + 1 > this.maxMessageBytes) return { kind: 'message', message: NAMES[code] ?? `message '${String.fromCharCode(code)}'`, size: length + 1, limit: this.maxMessageBytes };
    return null;
  }
}

/** The error a violation answers the request with (all 400 RESULT_TOO_LARGE but a malformed stream). */
export function violationError(v: GuardViolation): SiloError {
  if (v.kind === 'result') return runtimeErrors.resultTooLarge('bytes', v.limit);
  if (v.kind === 'message') return runtimeErrors.messageTooLarge(v.message, v.limit);
  return runtimeErrors.unavailable('The tenant database sent a malformed message');
}

/**
 * A pg Connection whose parser only sees bytes a MessageGuard let through. An oversized message
 * destroys the socket at its header (the error goes to the in-flight query as a SiloError), so no
 * tenant can make this process buffer more than its result cap per request, nor crash it with a
 * message pg cannot turn into a string (ERR_STRING_TOO_LONG). A parser exception stays on this
 * connection too.
 */
export class GuardedConnection extends Connection {
  readonly guard: MessageGuard;
  violation: SiloError | null = null;

  constructor(config: ConstructorParameters<typeof Connection>[0], maxMessageBytes = MAX_MESSAGE_BYTES) {
    super(config);
    this.guard = new MessageGuard(maxMessageBytes);
  }

  /** While set, the socket's bytes go to this relay instead of pg's parser (the wire front door). */
  private relay: ((chunk: Buffer) => void) | null = null;
  private wire: { stream: Duplex; feed: (chunk: Buffer) => void } | null = null;

  /**
   * Hands the backend socket to a relay: every byte goes to `relay` (not scanned: the relay follows
   * message boundaries itself) until restore(). Only while pg is idle on this connection (between
   * its queries), so pg's parser and the guard resume at a message boundary.
   */
  divert(relay: (chunk: Buffer) => void): Duplex {
    if (!this.wire) throw new Error('connection not attached');
    this.relay = relay;
    return this.wire.stream;
  }

  /** Gives the socket back to pg's parser; `rest` are bytes the relay got past its last message. */
  restore(rest?: Buffer): void {
    this.relay = null;
    if (rest?.length) this.wire?.feed(rest);
  }

  /** Called by pg with the socket (or the TLS stream after an upgrade). */
  attachListeners(stream: Duplex): void {
    const parserSide = new EventEmitter();
    (Connection.prototype as unknown as { attachListeners(s: EventEmitter): void }).attachListeners.call(this, parserSide);
    const feed = (chunk: Buffer) => {
      if (this.violation) return;
      const v = this.guard.scan(chunk);
      if (v) return this.fail(stream, violationError(v));
      try {
        parserSide.emit('data', chunk);
      } catch {
        this.fail(stream, runtimeErrors.unavailable('The tenant database sent a message the runtime could not read'));
      }
    };
    this.wire = { stream, feed };
    stream.on('data', (chunk: Buffer) => (this.relay ? this.relay(chunk) : feed(chunk)));
    stream.on('end', () => parserSide.emit('end'));
  }

  private fail(stream: Duplex, err: SiloError): void {
    this.violation = err;
    // pg hands a stream error to the active query and emits 'error' on the Client (the pool marks it broken).
    stream.destroy(err);
  }
}

/** The guard of a client made by guardedClient (null for any other client). */
export function guardOf(client: Client): GuardedConnection | null {
  const c = (client as unknown as { connection?: unknown }).connection;
  return c instanceof GuardedConnection ? c : null;
}

/** A pg Client reading its socket through a GuardedConnection (same connection settings pg would use). */
export function guardedClient(cfg: ClientConfig, maxMessageBytes = MAX_MESSAGE_BYTES): Client {
  // Parsed like pg's own Client does (ssl and encoding may come from the environment or a URL).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ConnectionParameters = require('pg/lib/connection-parameters') as new (c: ClientConfig) => { ssl: unknown; sslnegotiation?: string; client_encoding?: string };
  const p = new ConnectionParameters(cfg);
  const connection = new GuardedConnection(
    {
      stream: cfg.stream,
      ssl: p.ssl,
      sslNegotiation: p.sslnegotiation,
      keepAlive: cfg.keepAlive || false,
      keepAliveInitialDelayMillis: cfg.keepAliveInitialDelayMillis || 0,
      encoding: p.client_encoding || 'utf8',
    } as never,
    maxMessageBytes,
  );
  return new Client({ ...cfg, connection } as ClientConfig);
}

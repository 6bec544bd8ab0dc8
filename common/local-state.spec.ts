import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedEnv, ensureLocalState, readLocalState } from './local-state';

describe('local state: where embedded tenant databases live', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'silo-state-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('a fresh .silo/ gets a separate tenant server with its own port, password and CA', () => {
    const state = ensureLocalState(root);
    expect(state.tenantServer).toBe('separate');
    expect(state.tenantPostgresPort).not.toBe(state.postgresPort);
    expect(state.tenantPostgresPassword).not.toBe(state.postgresPassword);
    const env = embeddedEnv(state, join(root, '.silo'));
    expect(new URL(env.DATABASE_URL as string).port).toBe(String(state.postgresPort));
    expect(new URL(env.TENANT_DATABASE_URL as string).port).toBe(String(state.tenantPostgresPort));
    expect(env.TENANT_DATABASE_CA_DIR).toBe(join(root, '.silo', 'tenant-ca'));
    expect(ensureLocalState(root)).toEqual(state); // stable across restarts
  });

  it('an existing .silo/ from the single-server layout is left undecided (start-up looks for its tenants) and keeps its values', () => {
    mkdirSync(join(root, '.silo', 'pg'), { recursive: true });
    writeFileSync(join(root, '.silo', 'pg', 'PG_VERSION'), '18\n');
    const old = { adminToken: 'a'.repeat(30), masterKey: Buffer.alloc(32, 1).toString('base64'), webhookSecret: 'whsec_x', postgresPassword: 'old', postgresPort: 54329 };
    writeFileSync(join(root, '.silo', 'state.json'), JSON.stringify(old));
    const state = ensureLocalState(root);
    expect(state.tenantServer).toBeUndefined();
    expect(state).toMatchObject(old);
    expect(JSON.parse(readFileSync(join(root, '.silo', 'state.json'), 'utf8'))).toMatchObject(old);
  });

  it('the shared layout keeps tenant databases on the control server, with no CA (password logins, as before)', () => {
    const state = { ...ensureLocalState(root), tenantServer: 'shared' as const };
    const env = embeddedEnv(state, join(root, '.silo'));
    expect(env.TENANT_DATABASE_URL).toBe(`postgres://postgres:${encodeURIComponent(state.postgresPassword)}@127.0.0.1:${state.postgresPort}/postgres`);
    expect(env.TENANT_DATABASE_CA_DIR).toBeUndefined();
    // An old state.json read by the CLI (no tenantServer field) means the same.
    const { tenantServer: _, ...undecided } = state;
    expect(embeddedEnv(undecided as typeof state).TENANT_DATABASE_URL).toBe(env.TENANT_DATABASE_URL);
    expect(readLocalState(root)?.tenantServer).toBe('separate');
  });
});

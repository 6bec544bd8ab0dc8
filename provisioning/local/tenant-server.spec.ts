import { renderTenantHba, tenantServerFlags, tenantServerWarnings } from './tenant-server';

/** pg_hba.conf lines as [type, database, user, address?, method]. */
function rules(): string[][] {
  return renderTenantHba().split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/));
}

describe('tenant server pg_hba.conf', () => {
  it('lets tenant roles in by certificate only, to their own database, from loopback', () => {
    const tenantRules = rules().filter((r) => r[2] === '+silo_tenants');
    const accepting = tenantRules.filter((r) => r[r.length - 1] !== 'reject');
    expect(accepting).toEqual([
      ['hostssl', 'sameuser', '+silo_tenants', '127.0.0.1/32', 'cert'],
      ['hostssl', 'sameuser', '+silo_tenants', '::1/128', 'cert'],
    ]);
    // Everything else for them is rejected before any password line can match.
    const all = rules();
    const firstPassword = all.findIndex((r) => r[r.length - 1] === 'scram-sha-256');
    const groupReject = all.findIndex((r) => r[2] === '+silo_tenants' && r[r.length - 1] === 'reject');
    const nameReject = all.findIndex((r) => r[2] === '/^t_[0-9a-f]{32}$' && r[r.length - 1] === 'reject');
    expect(groupReject).toBeGreaterThan(-1);
    expect(nameReject).toBeGreaterThan(-1);
    expect(groupReject).toBeLessThan(firstPassword);
    expect(nameReject).toBeLessThan(firstPassword);
  });

  it('has no trust, password or md5 line, no socket access, and rejects what it does not name', () => {
    const all = rules();
    expect(all.map((r) => r[r.length - 1])).not.toEqual(expect.arrayContaining(['trust']));
    expect(all.some((r) => ['trust', 'password', 'md5', 'ident', 'peer'].includes(r[r.length - 1] as string))).toBe(false);
    expect(all.find((r) => r[0] === 'local')).toEqual(['local', 'all', 'all', 'reject']);
    expect(all[all.length - 1]).toEqual(['host', 'all', 'all', 'all', 'reject']);
    // The admin keeps SCRAM, on loopback only.
    expect(all.filter((r) => r[r.length - 1] === 'scram-sha-256').map((r) => r[3])).toEqual(['127.0.0.1/32', '::1/128']);
  });

  it('runs the server with TLS on, client certificates checked against the CRL, TCP on loopback only, and a deliberate lock table size', () => {
    const flags = tenantServerFlags({ maxConnections: 200, maxLocksPerTransaction: 256 });
    const settings = Object.fromEntries(flags.filter((_, i) => i % 2 === 1).map((kv) => kv.split('=') as [string, string]));
    expect(settings).toMatchObject({ ssl: 'on', ssl_crl_file: 'silo-crl.pem', listen_addresses: '127.0.0.1', unix_socket_directories: '', max_connections: '200', max_locks_per_transaction: '256', max_prepared_transactions: '0' });
  });
});

describe('tenant server start-up warnings', () => {
  const control = 'postgres://silo:pw@db.internal:5432/silo';

  it('warns when tenant databases share the control server, explicitly or by default', () => {
    expect(tenantServerWarnings({ driver: 'local', controlUrl: control }).join(' ')).toMatch(/share the control database's PostgreSQL server/);
    expect(tenantServerWarnings({ driver: 'local', controlUrl: control, tenantUrl: 'postgres://x:y@db.internal/postgres', caDir: '/ca' })).toHaveLength(1);
  });

  it('warns that password logins cannot be confined on a server Silo does not run', () => {
    const w = tenantServerWarnings({ driver: 'local', controlUrl: control, tenantUrl: 'postgres://x:y@tenants.internal:5432/postgres' });
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/change its own password/);
    expect(w.join(' ')).not.toMatch(/pw|x:y/); // no credentials in the message
  });

  it('is quiet for a separate server Silo runs, and for the AWS driver', () => {
    expect(tenantServerWarnings({ driver: 'local', controlUrl: control, tenantUrl: 'postgres://x:y@127.0.0.1:54330/postgres', caDir: '/ca' })).toEqual([]);
    expect(tenantServerWarnings({ driver: 'aws', controlUrl: control })).toEqual([]);
  });
});

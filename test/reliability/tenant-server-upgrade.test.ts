import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { EmbeddedSilo } from './support/embedded-silo';

/**
 * `npm start` on a .silo/ made before tenant databases got a server of their own (issue #13 item
 * 3): the layout is decided once, on the first start, from what the control server holds.
 * Tenants already on the control server stay there and keep working (nothing is moved); an
 * installation without tenants moves to the separate tenant server.
 */

/** A state.json as the single-server Silo wrote it: no tenantServer (ports kept so the test uses free ones). */
function asOldLayout(silo: EmbeddedSilo): void {
  const { tenantServer: _, ...old } = silo.state();
  silo.writeState(old);
}

async function tenantDatabasesOn(port: number, password: string): Promise<string[]> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await c.connect();
  try {
    const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$' ORDER BY 1`);
    return rows.map((r) => r.datname);
  } finally {
    await c.end();
  }
}

describe('npm start on a .silo/ from the single-server layout', () => {
  let silo: EmbeddedSilo | null = null;
  afterEach(async () => {
    await silo?.cleanup();
    silo = null;
  }, 30_000);

  it('keeps tenants already on the control server there, working, and says so', async () => {
    silo = await EmbeddedSilo.create({ tenantServer: 'shared' }); // what the single-server Silo did
    await silo.start();
    const tenant = await silo.provision('legacy');
    expect((await silo.query(tenant, 'SELECT 1 AS one')).body.rows).toEqual([{ one: 1 }]);
    await silo.stop();

    asOldLayout(silo);
    await silo.start();
    expect(silo.state().tenantServer).toBe('shared');
    expect(existsSync(join(silo.dir, '.silo', 'pg-tenants'))).toBe(false);
    expect(await tenantDatabasesOn(silo.ports.control, silo.controlPassword)).toEqual([tenant.role]);
    const again = await silo.query(tenant, 'SELECT current_database() AS db');
    expect(again.status).toBe(200);
    expect(again.body.rows).toEqual([{ db: tenant.role }]);
    expect(silo.output.join('\n')).toMatch(/tenant dbs +the control server/);
    expect(silo.output.join('\n')).toMatch(/share the control database's PostgreSQL server/);
  }, 120_000);

  it('moves an installation without tenants to a separate tenant server', async () => {
    silo = await EmbeddedSilo.create({ tenantServer: 'shared' });
    await silo.start();
    await silo.stop();

    asOldLayout(silo);
    await silo.start();
    expect(silo.state().tenantServer).toBe('separate');
    const tenant = await silo.provision('fresh');
    expect(await tenantDatabasesOn(silo.ports.tenants, silo.tenantPassword)).toEqual([tenant.role]);
    expect(await tenantDatabasesOn(silo.ports.control, silo.controlPassword)).toEqual([]);
    expect((await silo.query(tenant, 'SELECT 1 AS one')).body.rows).toEqual([{ one: 1 }]);
  }, 120_000);
});

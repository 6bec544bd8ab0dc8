import { Client } from 'pg';
import { PgBackendTerminator, TerminatorLogin } from '../tenant-runtime/backend-terminator';
import { testDatabaseUrl } from './support/env';

/** PgBackendTerminator against the real PostgreSQL: the login is asked per server, and a password may be a per-connect function. */
describe('PgBackendTerminator login per server', () => {
  const u = new URL(testDatabaseUrl());
  const port = Number(u.port || 5432);
  // The test server's superuser stands in for the terminator role: this is about which login is used where.
  const base = { user: decodeURIComponent(u.username) || 'postgres', database: u.pathname.slice(1) || 'postgres' };

  it('asks the login for each server it connects to (the backend\'s own host and port) and terminates there', async () => {
    const asked: Array<{ host: string; port: number }> = [];
    const terminator = new PgBackendTerminator(async (server): Promise<TerminatorLogin> => {
      asked.push(server);
      // A function password, as the IAM login gives (accepted; the test server's trust auth never asks for it).
      return { ...base, password: async () => decodeURIComponent(u.password) };
    });
    const victim = new Client({ connectionString: testDatabaseUrl() });
    await victim.connect();
    victim.on('error', () => undefined);
    try {
      const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const role = (await victim.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;
      // Two names of one server are two servers to the terminator: each gets its own login.
      expect(await terminator.reap({ host: 'localhost', port }, [{ host: 'localhost', port, pid: 2 ** 31 - 1, role }])).toEqual(new Set());
      const present = await terminator.reap({ host: u.hostname, port }, [{ host: u.hostname, port, pid, role }]);
      expect(present).toEqual(new Set([pid]));
      expect(asked).toEqual([{ host: 'localhost', port }, { host: u.hostname, port }]);
      // Asked again for a server it has a pool for: no new login; the backend is gone within 2 s.
      const deadline = Date.now() + 2_000;
      let left = present;
      while (left.size && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        left = await terminator.reap({ host: u.hostname, port }, [{ host: u.hostname, port, pid, role }]);
      }
      expect(left).toEqual(new Set());
      expect(asked).toHaveLength(2);
    } finally {
      await terminator.close();
      await victim.end().catch(() => undefined);
    }
  });
});

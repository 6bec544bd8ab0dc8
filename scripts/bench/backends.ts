/**
 * The ceiling under the runtime's many-tenant figure: raw `pg` (no HTTP, no Silo) running the
 * runtime benchmark's SELECT round-robin over N open backends, 16 queries in flight, on a private
 * cluster. Database-per-tenant means one backend per active tenant, so if PostgreSQL on this
 * machine slows down with the number of live backends, no router can do better than this.
 *
 *   npm run build && node dist/scripts/bench/backends.js [--counts 16,100,400,1000] [--seconds 4] [--write-docs]
 */
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { Client } from 'pg';
import { flag, freePort, writeDocSection } from '../support/dev-utils';
import { BenchCluster } from './runtime/cluster';

const SQL = 'SELECT $1::int AS id, $2::text AS greeting';
/** Queries in flight (fewer when there are fewer backends). */
const CONCURRENCY = 16;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const counts = (flag(args, '--counts') ?? '16,100,400,1000').split(',').map(Number);
  const seconds = Number(flag(args, '--seconds') ?? 4);
  const cluster = new BenchCluster(await freePort());
  cluster.start();
  const clients: Client[] = [];
  const rows: Array<{ n: number; qps: number }> = [];
  try {
    for (const n of counts) {
      while (clients.length < n) {
        const batch = Array.from({ length: Math.min(20, n - clients.length) }, async () => {
          const c = new Client({ connectionString: cluster.url, application_name: 'silo-bench-backends' });
          await c.connect();
          return c;
        });
        clients.push(...(await Promise.all(batch)));
      }
      const active = clients.slice(0, n);
      for (const c of active) await c.query(SQL, [42, 'hello']); // every backend has run the query once
      // Never more queries in flight than backends: a worker must always find a free one.
      const inFlight = Math.min(CONCURRENCY, n);
      const busy = new Set<Client>();
      let next = 0;
      let done = 0;
      const until = Date.now() + seconds * 1000;
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (Date.now() < until) {
          let c: Client;
          do c = active[next++ % n] as Client;
          while (busy.has(c));
          busy.add(c);
          await c.query(SQL, [42, 'hello']);
          busy.delete(c);
          done++;
        }
      }));
      rows.push({ n, qps: done / seconds });
      process.stdout.write(`${n} backends: ${(done / seconds).toFixed(0)} qps\n`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    cluster.stop();
  }
  const first = rows[0] as { n: number; qps: number };
  const section = [
    '## PostgreSQL with many live backends',
    '',
    `Command: \`npm run build && node dist/scripts/bench/backends.js --counts ${counts.join(',')} --write-docs\` (${new Date().toISOString().slice(0, 10)}).`,
    '',
    `Raw \`pg\`, no HTTP and no Silo: the runtime benchmark's SELECT, ${CONCURRENCY} in flight, round-robin over N open backends of one database`,
    `on a private cluster (the host's binaries, as in the runtime benchmark), ${cpus().length} vCPU. Every tenant with a pool holds at least one backend, so this is the`,
    'ceiling for round-robin over N tenants whatever the router does.',
    '',
    '| Backends | QPS | vs the first row |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.n} | ${r.qps.toFixed(0)} | ${(r.qps / first.qps).toFixed(2)}x |`),
  ].join('\n');
  process.stdout.write(`\n${section}\n`);
  if (args.includes('--write-docs')) writeDocSection(join(resolve(__dirname, '..', '..', '..'), 'docs', 'benchmarks.md'), 'PostgreSQL with many live backends', section);
}


main().catch((err: unknown) => {
  process.stderr.write(`backends benchmark failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

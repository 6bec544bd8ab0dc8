import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';

/**
 * The baseline: the least a server can do to answer the same request, a bare node:http server
 * with one pg pool to one tenant database. No tenant resolution, auth, limits or metrics.
 * Run by scripts/bench/runtime.ts as a child process; prints its URL on stdout.
 */
const pool = new Pool({ connectionString: process.env.BASELINE_DATABASE_URL, max: Number(process.env.BASELINE_POOL_SIZE ?? 10) });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const { sql, params } = JSON.parse(Buffer.concat(chunks).toString()) as { sql: string; params?: unknown[] };
    pool.query({ text: sql, values: params ?? [] }).then(
      (r) => {
        const body = JSON.stringify({ fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), rows: r.rows, rowCount: r.rowCount, command: r.command });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      (err: Error) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.message }));
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`));
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));

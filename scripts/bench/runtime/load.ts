import { Agent, request } from 'node:http';

export interface LoadRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  qps: number;
  /** Per-request latency in ms. */
  latencies: number[];
  firstError?: string;
}

/**
 * Closed-loop load: `concurrency` keep-alive connections each send the next request as soon as
 * the previous answer arrives, for `durationMs`. Loopback only (the URL is always 127.0.0.1).
 */
export async function runLoad(baseUrl: string, o: { concurrency: number; durationMs: number; next: (i: number) => LoadRequest }): Promise<LoadResult> {
  const u = new URL(baseUrl);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error('load generator is loopback only');
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let i = 0;
  const started = process.hrtime.bigint();
  const end = Date.now() + o.durationMs;
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (Date.now() < end) {
      const req = o.next(i++);
      const t = process.hrtime.bigint();
      const { status, body } = await send(u, agent, req);
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (status !== 200) {
        errors++;
        firstError ??= `${status} ${body.slice(0, 200)}`;
      }
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return { requests: latencies.length, errors, seconds, qps: latencies.length / seconds, latencies, firstError };
}

export function send(u: URL, agent: Agent | undefined, r: LoadRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: r.path, method: 'POST', agent, headers: { ...r.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(r.body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

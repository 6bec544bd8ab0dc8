import { Agent, request } from 'node:http';

/**
 * One HTTP request to a service on loopback with full control of the Host header (which fetch
 * does not allow). Never rejects: a failed connection answers status 0 with code NETWORK (or
 * CLIENT_TIMEOUT), so load loops can count it.
 */
export interface HttpResult {
  status: number;
  /** Silo's error code (or the neon body's `code`), null on success. */
  code: string | null;
  text: string;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

export interface CallOptions {
  key?: string | null;
  host?: string;
  body?: unknown;
  rawBody?: string | Buffer;
  method?: string;
  headers?: Record<string, string>;
  agent?: Agent;
  timeoutMs?: number;
}

const defaultAgent = new Agent({ keepAlive: true, maxSockets: 32 });

export function httpCall(baseUrl: string, path: string, o: CallOptions = {}): Promise<HttpResult> {
  const u = new URL(baseUrl);
  const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.host) headers.host = o.host;
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? (payload === undefined ? 'GET' : 'POST'), headers, agent: o.agent ?? defaultAgent, timeout: o.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        const status = res.statusCode ?? 0;
        const code = status >= 200 && status < 300 ? null : (body?.error?.code ?? body?.code ?? `HTTP_${status}`);
        resolve({ status, code, text, body, headers: res.headers });
      });
      res.on('error', (err) => resolve({ status: 0, code: 'NETWORK', text: String(err), body: null, headers: {} }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ status: 0, code: /timeout/.test(err.message) ? 'CLIENT_TIMEOUT' : 'NETWORK', text: String(err), body: null, headers: {} }));
    req.end(payload);
  });
}


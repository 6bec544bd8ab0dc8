import type { TestControlPlane } from './control-plane';

/** A signed-in console session: its cookie and CSRF token (read from the page, as the console's script does). */
export interface ConsoleLogin {
  cookie: string;
  csrf: string;
}

/** Signs in to the console with a token through the real sign-in form; null when refused. */
export async function consoleSignIn(t: TestControlPlane, token: string): Promise<ConsoleLogin | null> {
  const res = await fetch(`${t.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
  if (res.status !== 303) return null;
  const set = res.headers.get('set-cookie') ?? '';
  const cookie = set.split(';')[0] as string;
  const page = await fetch(`${t.url}/console/tenants`, { headers: { cookie } });
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1];
  if (!csrf) throw new Error('signed in but the page has no CSRF token');
  return { cookie, csrf };
}

/** A request as the console makes it: the session cookie, and the CSRF header when `csrf` is given. */
export async function consoleCall(t: TestControlPlane, method: string, path: string, o: { cookie?: string; csrf?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.cookie) headers.cookie = o.cookie;
  if (o.csrf) headers['x-csrf-token'] = o.csrf;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(t.url + path, { method, headers, redirect: 'manual', body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML pages stay text
  }
  return { status: res.status, body, headers: res.headers };
}

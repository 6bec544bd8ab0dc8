import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The claims of a test account at the local provider. */
export interface OidcTestAccount {
  sub: string;
  email: string;
  email_verified: boolean;
  name?: string;
}

export interface TestOidcProvider {
  issuer: string;
  /** The account the next sign-in at the provider completes as (its login and consent are automatic). */
  nextLogin(account: OidcTestAccount): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a real OpenID provider (`oidc-provider`, ESM-only, so in a child process:
 * oidc-provider-process.mjs) with one confidential client. PKCE is required, as Silo must send it.
 */
export async function startOidcProvider(client: { client_id: string; client_secret: string; redirect_uris: string[] }): Promise<TestOidcProvider> {
  const child: ChildProcess = spawn(process.execPath, [join(__dirname, 'oidc-provider-process.mjs'), JSON.stringify(client)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const issuer = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve((JSON.parse(line) as { issuer: string }).issuer);
    });
    child.once('exit', (code) => reject(new Error(`oidc provider exited (${code}): ${stderr}`)));
  });
  return {
    issuer,
    async nextLogin(account) {
      const res = await fetch(`${issuer}/_test/next-login`, { method: 'POST', body: JSON.stringify(account) });
      if (res.status !== 204) throw new Error(`next-login: ${res.status}`);
    },
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** A TCP port free right now on 127.0.0.1 (for a control plane whose callback URL must be known before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

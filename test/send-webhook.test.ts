import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sendWebhook } from '../scripts/send-webhook';
import { startTestControlPlane, TEST_ADMIN_TOKEN, TEST_WEBHOOK_SECRET, TestControlPlane } from './support/control-plane';

/** scripts/send-webhook.ts run in-process against a real control plane, in its own folder (never the repository's .silo/). */
describe('send-webhook', () => {
  let t: TestControlPlane;
  const cwd = mkdtempSync(join(tmpdir(), 'silo-send-webhook-'));

  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => {
    await t.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  async function run(args: string[], env: Record<string, string> = { STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET, ADMIN_TOKEN: TEST_ADMIN_TOKEN }) {
    const out: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => { out.push(chunk.toString()); cb(); } });
    const code = await sendWebhook(args, { stdout: sink, stderr: sink, env, cwd });
    return { code, out: out.join('') };
  }

  it('purchase --name: the slug is derived from the name, and the script prints it', async () => {
    const r = await run(['purchase', '--name', 'Blue Whale Ltd', '--url', t.url]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^tenant blue-whale-ltd, status \w+$/m);
    const sub = /subscription (sub_\w+)/.exec(r.out)?.[1];
    const listed = (await t.api('GET', '/v1/tenants?limit=500')).body.items as Array<{ slug: string; stripe: { subscriptionId: string } }>;
    expect(listed.find((x) => x.stripe.subscriptionId === sub)?.slug).toBe('blue-whale-ltd');
    expect(existsSync(join(cwd, '.silo', 'send-webhook.json'))).toBe(true);
  });

  it('purchase --slug wins over the name; without an admin token the slug is not guessed', async () => {
    const r = await run(['purchase', '--slug', 'orca', '--name', 'Blue Whale Ltd', '--url', t.url]);
    expect(r.out).toMatch(/^tenant orca, status \w+$/m);
    const anonymous = await run(['purchase', '--name', 'Grey Seal', '--url', t.url], { STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET });
    expect(anonymous.code).toBe(0);
    expect(anonymous.out).toMatch(/^tenant slug not shown: no admin token \(set ADMIN_TOKEN\)/m);
  });

  it('help says what --name does', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out.replace(/\s+/g, ' ')).toMatch(/--name <name> purchase: the customer name .*Silo derives the slug from it/);
  });
});

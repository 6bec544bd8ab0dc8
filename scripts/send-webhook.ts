import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Stripe from 'stripe';
import {
  FIXTURE_PLANS, FixturePlanName, newSubscription, SCENARIOS, ScenarioName, scenarioEvents, StripeEventFixture, SubscriptionState,
} from '../test/support/stripe-fixtures';
import { localStateDir, readLocalState } from '../common/local-state';

/**
 * Sends correctly signed sample Stripe events to a running control plane, for people without a
 * Stripe account (with one, use `stripe listen` + `stripe trigger`; see docs/billing.md).
 *
 *   node dist/scripts/send-webhook.js purchase --slug acme
 *   node dist/scripts/send-webhook.js past-due          # the last purchased subscription
 *   node dist/scripts/send-webhook.js ./event.json --url http://localhost:3000 --secret whsec_...
 *
 * The simulated subscription is remembered in .silo/send-webhook.json so later scenarios describe it.
 */
interface Options {
  url: string;
  secret?: string;
  subscription?: string;
  slug?: string;
  name?: string;
  email?: string;
  plan?: string;
  repeat: string;
}

/** Where the script runs: the remembered subscription and the secrets are under `<cwd>/.silo`. */
export interface SendWebhookIo {
  stdout: Pick<NodeJS.WritableStream, 'write'>;
  stderr: Pick<NodeJS.WritableStream, 'write'>;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

const simFile = (cwd: string) => join(localStateDir(cwd), 'send-webhook.json');

function loadSim(cwd: string): SubscriptionState | null {
  const file = simFile(cwd);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SubscriptionState) : null;
}

function saveSim(s: SubscriptionState, cwd: string): void {
  mkdirSync(localStateDir(cwd), { recursive: true, mode: 0o700 });
  writeFileSync(simFile(cwd), JSON.stringify(s, null, 2) + '\n');
}

function planOf(name: string | undefined): FixturePlanName | undefined {
  if (name === undefined) return undefined;
  if (!(name in FIXTURE_PLANS)) throw new Error(`--plan must be one of ${Object.keys(FIXTURE_PLANS).join(', ')}`);
  return name as FixturePlanName;
}

function resolveSecret(opts: Options, io: SendWebhookIo): string {
  const secret = opts.secret ?? io.env.STRIPE_WEBHOOK_SECRET?.split(',')[0]?.trim() ?? readLocalState(io.cwd)?.webhookSecret;
  if (!secret) throw new Error('no signing secret: pass --secret whsec_… (or set STRIPE_WEBHOOK_SECRET, or run `npm start` once to create .silo/state.json)');
  return secret;
}

/** Events for a scenario, and the subscription afterwards (null: an event file, nothing to remember). */
function eventsFor(target: string, opts: Options, cwd: string): { events: StripeEventFixture[]; state: SubscriptionState | null } {
  if ((SCENARIOS as readonly string[]).includes(target)) {
    const scenario = target as ScenarioName;
    const plan = planOf(opts.plan);
    let sim: SubscriptionState | null;
    if (scenario === 'purchase') {
      sim = newSubscription({
        ...(opts.subscription ? { subscriptionId: opts.subscription } : {}), slug: opts.slug ?? null, plan: plan ?? 'starter',
        ...(opts.name ? { customerName: opts.name } : {}), ...(opts.email ? { customerEmail: opts.email } : {}),
      });
    } else {
      const saved = loadSim(cwd);
      sim = opts.subscription && saved?.subscriptionId !== opts.subscription ? newSubscription({ subscriptionId: opts.subscription, plan: plan ?? 'starter' }) : saved;
      if (!sim) throw new Error(`no subscription to act on: run the purchase scenario first, or pass --subscription sub_…`);
    }
    return scenarioEvents(scenario, sim, { plan: scenario === 'plan-change' ? plan : undefined });
  }
  target = resolve(cwd, target);
  if (!existsSync(target)) throw new Error(`unknown scenario or file: ${target} (scenarios: ${SCENARIOS.join(', ')})`);
  const parsed = JSON.parse(readFileSync(target, 'utf8')) as StripeEventFixture | StripeEventFixture[];
  return { events: Array.isArray(parsed) ? parsed : [parsed], state: null };
}

async function send(url: string, secret: string, event: StripeEventFixture): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(event, null, 2);
  const signature = new Stripe('sk_test_silo_send_webhook').webhooks.generateTestHeaderString({ payload, secret });
  const res = await fetch(`${url.replace(/\/$/, '')}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature, 'user-agent': 'silo-send-webhook' },
    body: payload,
  });
  return { status: res.status, body: await res.text() };
}

/**
 * The tenant of a subscription, read back from the admin API (needs the admin token: ADMIN_TOKEN,
 * else `.silo/state.json`): the webhook answer does not name it. Null when it cannot be read.
 */
async function tenantOf(url: string, token: string, subscriptionId: string): Promise<{ slug: string; status: string } | null> {
  const base = url.replace(/\/$/, '');
  const headers = { authorization: `Bearer ${token}` };
  const events = await fetch(`${base}/v1/webhook-events?subscription=${encodeURIComponent(subscriptionId)}&limit=20`, { headers });
  if (!events.ok) return null;
  const tenantId = ((await events.json()) as { items: Array<{ tenantId: string | null }> }).items.find((e) => e.tenantId)?.tenantId;
  if (!tenantId) return null;
  const tenant = await fetch(`${base}/v1/tenants/${encodeURIComponent(tenantId)}`, { headers });
  return tenant.ok ? ((await tenant.json()) as { slug: string; status: string }) : null;
}

/** The script without process globals: returns the exit code (0 sent, 1 an event was refused, 2 usage or unreachable). */
export async function sendWebhook(argv: string[], io: SendWebhookIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string }; exitCode?: number; code?: string };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
    io.stderr.write(`send-webhook: ${e.cause?.code === 'ECONNREFUSED' ? 'control plane not reachable (is it running? --url)' : e.message}\n`);
    return 2;
  }
}

async function run(argv: string[], io: SendWebhookIo): Promise<number> {
  const program = new Command()
    .name('send-webhook')
    .description(`Send signed sample Stripe events to a running control plane.\nScenarios: ${SCENARIOS.join(', ')}; or a JSON file holding an event (or an array of events).`)
    .argument('<scenario|event.json>')
    .option('--url <url>', 'control plane base URL', 'http://localhost:3000')
    .option('--secret <whsec>', 'signing secret (default: STRIPE_WEBHOOK_SECRET, then .silo/state.json webhookSecret)')
    .option('--subscription <id>', 'act on this subscription id instead of the remembered one')
    .option('--slug <slug>', 'purchase: metadata.tenant_slug (the slug Silo gives the tenant, normalised, suffixed if taken)')
    .option('--name <name>', 'purchase: the customer name (default "Acme Corp"); without --slug, Silo derives the slug from it (docs/billing.md, "Slug rules")')
    .option('--email <email>', 'purchase: the customer email')
    .option('--plan <plan>', `purchase / plan-change: ${Object.keys(FIXTURE_PLANS).join(' | ')}`)
    .option('--repeat <n>', 'deliver each event n times (Stripe retries: the repeats must be duplicates)', '1')
    .exitOverride()
    .configureOutput({ writeOut: (str) => io.stdout.write(str), writeErr: (str) => io.stderr.write(str) })
    .parse(argv, { from: 'user' });
  const target = program.args[0];
  const opts = program.opts<Options>();
  const secret = resolveSecret(opts, io);
  const { events, state } = eventsFor(target, opts, io.cwd);
  const repeat = Math.max(1, Number(opts.repeat) || 1);

  let failed = false;
  for (const event of events) {
    for (let i = 0; i < repeat; i++) {
      const res = await send(opts.url, secret, event);
      failed ||= res.status >= 300;
      io.stdout.write(`${res.status}  ${event.type.padEnd(34)} ${event.id}  ${res.body}\n`);
    }
  }
  if (state && !failed) {
    saveSim(state, io.cwd);
    io.stdout.write(`subscription ${state.subscriptionId} (customer ${state.customerId}, plan ${state.plan.lookupKey}, status ${state.status}) saved to ${simFile(io.cwd)}\n`);
    const token = io.env.ADMIN_TOKEN || readLocalState(io.cwd)?.adminToken;
    const tenant = token ? await tenantOf(opts.url, token, state.subscriptionId) : null;
    if (tenant) {
      const placeholder = tenant.slug.startsWith('pending-') ? ' (a placeholder until the subscription is paid: docs/billing.md, "Slug rules")' : '';
      io.stdout.write(`tenant ${tenant.slug}${placeholder}, status ${tenant.status}\n`);
    } else {
      io.stdout.write(`tenant slug not shown: ${token ? 'the admin API did not name the tenant' : 'no admin token (set ADMIN_TOKEN)'}; GET /v1/webhook-events?subscription=${state.subscriptionId}\n`);
    }
  }
  return failed ? 1 : 0;
}

if (require.main === module) {
  void sendWebhook(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }).then((code) => {
    process.exitCode = code;
  });
}

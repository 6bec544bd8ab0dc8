import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Stripe from 'stripe';
import {
  FIXTURE_PLANS, FixturePlanName, newSubscription, SCENARIOS, ScenarioName, scenarioEvents, StripeEventFixture, SubscriptionState,
} from '../control-plane/billing/stripe-fixtures';
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

const SIM_FILE = join(localStateDir(), 'send-webhook.json');

function loadSim(): SubscriptionState | null {
  return existsSync(SIM_FILE) ? (JSON.parse(readFileSync(SIM_FILE, 'utf8')) as SubscriptionState) : null;
}

function saveSim(s: SubscriptionState): void {
  mkdirSync(localStateDir(), { recursive: true, mode: 0o700 });
  writeFileSync(SIM_FILE, JSON.stringify(s, null, 2) + '\n');
}

function planOf(name: string | undefined): FixturePlanName | undefined {
  if (name === undefined) return undefined;
  if (!(name in FIXTURE_PLANS)) throw new Error(`--plan must be one of ${Object.keys(FIXTURE_PLANS).join(', ')}`);
  return name as FixturePlanName;
}

function resolveSecret(opts: Options): string {
  const secret = opts.secret ?? process.env.STRIPE_WEBHOOK_SECRET?.split(',')[0]?.trim() ?? readLocalState()?.webhookSecret;
  if (!secret) throw new Error('no signing secret: pass --secret whsec_… (or set STRIPE_WEBHOOK_SECRET, or run `npm start` once to create .silo/state.json)');
  return secret;
}

/** Events for a scenario, and the subscription afterwards (null: an event file, nothing to remember). */
function eventsFor(target: string, opts: Options): { events: StripeEventFixture[]; state: SubscriptionState | null } {
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
      const saved = loadSim();
      sim = opts.subscription && saved?.subscriptionId !== opts.subscription ? newSubscription({ subscriptionId: opts.subscription, plan: plan ?? 'starter' }) : saved;
      if (!sim) throw new Error(`no subscription to act on: run the purchase scenario first, or pass --subscription sub_…`);
    }
    return scenarioEvents(scenario, sim, { plan: scenario === 'plan-change' ? plan : undefined });
  }
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

async function main(): Promise<void> {
  const program = new Command()
    .name('send-webhook')
    .description(`Send signed sample Stripe events to a running control plane.\nScenarios: ${SCENARIOS.join(', ')}; or a JSON file holding an event (or an array of events).`)
    .argument('<scenario|event.json>')
    .option('--url <url>', 'control plane base URL', 'http://localhost:3000')
    .option('--secret <whsec>', 'signing secret (default: STRIPE_WEBHOOK_SECRET, then .silo/state.json webhookSecret)')
    .option('--subscription <id>', 'act on this subscription id instead of the remembered one')
    .option('--slug <slug>', 'purchase: metadata.tenant_slug')
    .option('--name <name>', 'purchase: the customer name (the slug is derived from it when --slug is not given)')
    .option('--email <email>', 'purchase: the customer email')
    .option('--plan <plan>', `purchase / plan-change: ${Object.keys(FIXTURE_PLANS).join(' | ')}`)
    .option('--repeat <n>', 'deliver each event n times (Stripe retries: the repeats must be duplicates)', '1')
    .parse();
  const target = program.args[0];
  const opts = program.opts<Options>();
  const secret = resolveSecret(opts);
  const { events, state } = eventsFor(target, opts);
  const repeat = Math.max(1, Number(opts.repeat) || 1);

  let failed = false;
  for (const event of events) {
    for (let i = 0; i < repeat; i++) {
      const res = await send(opts.url, secret, event);
      failed ||= res.status >= 300;
      process.stdout.write(`${res.status}  ${event.type.padEnd(34)} ${event.id}  ${res.body}\n`);
    }
  }
  if (state && !failed) {
    saveSim(state);
    process.stdout.write(`subscription ${state.subscriptionId} (customer ${state.customerId}, plan ${state.plan.lookupKey}, status ${state.status}) saved to ${SIM_FILE}\n`);
  }
  if (failed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  const e = err as Error & { cause?: { code?: string } };
  process.stderr.write(`send-webhook: ${e.cause?.code === 'ECONNREFUSED' ? 'control plane not reachable (is it running? --url)' : e.message}\n`);
  process.exit(2);
});

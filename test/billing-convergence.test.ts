import { newSubscription, nowSeconds, scenarioEvents, ScenarioName, StripeEventFixture, stripeEvents, SubscriptionState } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliverAll, PLANS_FILE, TenantRow, tenantsOf } from './support/stripe';

const DAY = 86_400;

/** Deterministic shuffles, so a failing order can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffled<T>(items: T[], seed: number): T[] {
  const rnd = mulberry32(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A subscription's life as Stripe reports it: bought, upgraded, a late payment, recovered (then paused, resumed, canceled). */
function lifeOf(s: SubscriptionState, start: number, untilCanceled: boolean): StripeEventFixture[] {
  const steps: Array<[ScenarioName, number]> = [['purchase', 0], ['plan-change', 1], ['past-due', 10], ['recover', 11]];
  if (untilCanceled) steps.push(['pause', 15], ['resume', 16], ['cancel', 18]);
  const events: StripeEventFixture[] = [];
  let state = s;
  for (const [name, day] of steps) {
    const step = scenarioEvents(name, state, { at: start + day * DAY, plan: 'pro' });
    state = step.state;
    events.push(...step.events);
  }
  return events;
}

/**
 * A life where later events make earlier ones late in ways a "newest wins" rule gets wrong: paused and
 * resumed before a failed payment, a past-due stretch with Stripe's retries and `unpaid`, a recovery,
 * then a second stretch still open (so the grace period must run from its first failure).
 */
function lifeWithRetries(s: SubscriptionState, start: number): StripeEventFixture[] {
  const at = (day: number) => start + day * DAY;
  const e = stripeEvents;
  const events = scenarioEvents('purchase', s, { at: at(0) }).events;
  let state = { ...s, status: 'active', startedAt: at(0) };
  for (const [name, day] of [['pause', 2], ['resume', 3], ['past-due', 10]] as Array<[ScenarioName, number]>) {
    const step = scenarioEvents(name, state, { at: at(day) });
    state = step.state;
    events.push(...step.events);
  }
  events.push(e.invoicePaymentFailed(state, at(13))); // a retry: only the invoice fails again
  state = { ...state, status: 'unpaid' };
  events.push(e.invoicePaymentFailed(state, at(16)), e.subscriptionUpdated(state, at(16), { status: 'past_due' }));
  const recover = scenarioEvents('recover', state, { at: at(20) });
  events.push(...recover.events);
  const again = scenarioEvents('past-due', recover.state, { at: at(25) });
  events.push(...again.events, e.invoicePaymentFailed(again.state, at(28)));
  return events;
}

const view = (r: TenantRow, start: number) => ({
  name: r.name, status: r.status, tier: r.tier, billing: r.billing_status, pastDueSince: r.past_due_since, reason: r.suspend_reason,
  offboarding: r.offboard_at !== null, lastEventDay: (Number(r.last_event_created) - start) / DAY,
});

describe('shuffled deliveries of one subscription converge to the in-order state', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ TIERS_FILE: PLANS_FILE });
  });
  afterAll(async () => t.close());

  /** Delivers the same life to a fresh subscription per order (in order, reversed, then seeded shuffles); returns each final state. */
  async function finalStates(untilCanceled: boolean, seeds: number[], drain: boolean): Promise<Record<string, ReturnType<typeof view>>> {
    const start = nowSeconds() - 30 * DAY;
    const runs: Array<{ label: string; sub: SubscriptionState }> = [];
    for (const [i, seed] of [0, -1, ...seeds].entries()) {
      const sub = newSubscription({ slug: `conv-${untilCanceled ? 'c' : 'a'}-${i}`, customerName: 'Converge Inc' });
      const life = lifeOf(sub, start, untilCanceled);
      await deliverAll(t, seed === 0 ? life : seed === -1 ? [...life].reverse() : shuffled(life, seed));
      runs.push({ label: seed === 0 ? 'in order' : seed === -1 ? 'reversed' : `seed ${seed}`, sub });
    }
    if (drain) await t.drainJobs();
    const states: Record<string, ReturnType<typeof view>> = {};
    for (const r of runs) {
      const rows = await tenantsOf(t, r.sub.subscriptionId);
      expect(rows).toHaveLength(1);
      states[r.label] = view(rows[0], start);
    }
    return states;
  }

  it('a life that ends in cancellation (13 events; in order, reversed, 4 shuffles): the same tenant state every time', async () => {
    const states = await finalStates(true, [101, 202, 303, 404], false);
    const expected = { name: 'Converge Inc', status: 'suspended', tier: 'pro', billing: 'canceled', pastDueSince: null, reason: 'billing: subscription canceled', offboarding: true, lastEventDay: 18 };
    expect(states['in order']).toEqual(expected);
    for (const [label, state] of Object.entries(states)) expect({ label, ...state }).toEqual({ label, ...expected });
  });

  it('late events that matter (a resume after a newer failed payment, the first failure of a stretch after its retry) still count: every order ends in the in-order state', async () => {
    const start = nowSeconds() - 40 * DAY;
    const orders: Array<{ label: string; sub: SubscriptionState }> = [];
    for (const [i, seed] of [0, -1, 11, 12, 13, 14, 15, 16].entries()) {
      const sub = newSubscription({ slug: `late-${i}`, customerName: 'Late Inc' });
      const life = lifeWithRetries(sub, start);
      await deliverAll(t, seed === 0 ? life : seed === -1 ? [...life].reverse() : shuffled(life, seed));
      orders.push({ label: seed === 0 ? 'in order' : seed === -1 ? 'reversed' : `seed ${seed}`, sub });
    }
    // Resumed before provisioning finished: back to provisioning; billing past due since day 25 (the retry on day 28 keeps it).
    const expected = { name: 'Late Inc', status: 'provisioning', tier: 'starter', billing: 'past_due', pastDueSince: new Date((start + 25 * DAY) * 1000), reason: null, offboarding: false, lastEventDay: 28 };
    for (const { label, sub } of orders) {
      const rows = await tenantsOf(t, sub.subscriptionId);
      expect(rows).toHaveLength(1);
      const state = view(rows[0], start);
      // `pending` and `provisioning` both mean "queued, nothing built": a resume that arrives first leaves it pending.
      expect({ label, ...state, status: state.status === 'pending' ? 'provisioning' : state.status }).toEqual({ label, ...expected });
    }
  });

  it('a life that ends active after a late payment (7 events; in order, reversed, 3 shuffles): the same state, active once provisioned', async () => {
    const states = await finalStates(false, [7, 8, 9], true);
    const expected = { name: 'Converge Inc', status: 'active', tier: 'pro', billing: 'active', pastDueSince: null, reason: null, offboarding: false, lastEventDay: 11 };
    expect(states['in order']).toEqual(expected);
    for (const [label, state] of Object.entries(states)) expect({ label, ...state }).toEqual({ label, ...expected });
  });
});

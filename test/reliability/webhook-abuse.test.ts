import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Agent } from 'node:http';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { directoryKeys } from '../../common/tenant-directory';
import { nowSeconds, StripeEventFixture, stripeEvent, subscriptionObject } from '../support/stripe-fixtures';
import { PLANS_FILE, signatureFor } from '../support/stripe';
import { httpCall, HttpResult } from './support/load';
import { OwnedRedis } from './support/redis-server';
import { recordFigures, round, runSeed, seededRandom, shuffle } from './support/report';
import { mapLimit, ReliabilityStack, WEBHOOK_SECRET } from './support/stack';
import { generateStripeTraffic, SimulatedSubscription } from './support/stripe-traffic';

/**
 * Scenario 2 of the reliability suite: Stripe's delivery (at least once, any order, retried) plus an
 * attacker's requests, against a control plane process; the result must equal a clean in-order run.
 * Scale is env-overridable: WEBHOOK_ABUSE_EVENTS, WEBHOOK_ABUSE_SUBSCRIPTIONS, WEBHOOK_ABUSE_MAX_DELIVERIES,
 * WEBHOOK_ABUSE_PER_KIND, WEBHOOK_ABUSE_CONCURRENCY; RELIABILITY_SEED replays a run.
 */
const envInt = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const EVENTS = envInt('WEBHOOK_ABUSE_EVENTS', 1_000);
const SUBSCRIPTIONS = envInt('WEBHOOK_ABUSE_SUBSCRIPTIONS', 60);
const MAX_DELIVERIES = envInt('WEBHOOK_ABUSE_MAX_DELIVERIES', 10);
const PER_KIND = envInt('WEBHOOK_ABUSE_PER_KIND', 50);
/** 1 MiB+ bodies are costly to send; fewer of them. */
const OVERSIZED = Math.max(1, Math.round(PER_KIND / 3));
const CONCURRENCY = envInt('WEBHOOK_ABUSE_CONCURRENCY', 12);
const REFERENCE_LANES = 8;

const ABUSE = {
  bad_signature: { status: 400, code: 'WEBHOOK_SIGNATURE_INVALID', reason: 'no_matching_signature' },
  unknown_secret: { status: 400, code: 'WEBHOOK_SIGNATURE_INVALID', reason: 'no_matching_signature' },
  stale_timestamp: { status: 400, code: 'WEBHOOK_SIGNATURE_INVALID', reason: 'timestamp_outside_tolerance' },
  missing_header: { status: 400, code: 'WEBHOOK_SIGNATURE_INVALID', reason: 'missing_header' },
  malformed_json: { status: 400, code: 'WEBHOOK_PAYLOAD_INVALID', reason: undefined },
  oversized: { status: 413, code: 'PAYLOAD_TOO_LARGE', reason: undefined },
} as const;
type AbuseKind = keyof typeof ABUSE;

type Delivery =
  | { kind: 'valid'; event: StripeEventFixture; payload: string }
  /** `sign` runs at send time, so only the stale kind carries an old timestamp however long the run takes. */
  | { kind: AbuseKind; id: string; payload: string; sign: () => string | null };

/** The business state of a tenant: what billing decided, not ids or timestamps of our own. */
interface TenantView {
  slug: string;
  name: string;
  status: string;
  tier: string;
  region: string;
  stripe_customer_id: string | null;
  billing_status: string | null;
  past_due_since: string | null;
  suspend_reason: string | null;
  offboarding_scheduled: boolean;
  last_event_created: string | null;
  failure_reason: string | null;
  deleted: boolean;
  /** A provision job (first provisioning or a reconfigure) is queued or running. */
  provisioning_queued: boolean;
  deprovision_jobs: number;
}

const TENANT_VIEW_SQL = `
  SELECT t.stripe_subscription_id AS sub, t.slug, t.name, t.status, t.tier, t.region, t.stripe_customer_id, t.billing_status,
         to_char(t.past_due_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS past_due_since, t.suspend_reason,
         t.offboard_at IS NOT NULL AS offboarding_scheduled, t.last_event_created::text AS last_event_created, t.failure_reason,
         t.deleted_at IS NOT NULL AS deleted,
         EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id AND j.type = 'provision' AND j.status IN ('queued', 'running')) AS provisioning_queued,
         (SELECT count(*)::int FROM jobs j WHERE j.tenant_id = t.id AND j.type = 'deprovision') AS deprovision_jobs
  FROM tenants t ORDER BY t.stripe_subscription_id`;

async function tenantViews(pool: Pool): Promise<Map<string, TenantView>> {
  const rows = (await pool.query(TENANT_VIEW_SQL)).rows as Array<TenantView & { sub: string }>;
  return new Map(rows.map(({ sub, ...view }) => [sub, view]));
}

/**
 * With the worker off, a never-provisioned tenant is `pending`, or `provisioning` once a billing resume
 * re-queued it (in order: paused then resumed; shuffled, the resume may arrive first and the pause is
 * then stale). Both mean "provisioning queued, nothing built yet": the worker takes both to `active`.
 */
const lifecycleClass = (status: string) => (status === 'pending' || status === 'provisioning' ? 'awaiting-provisioning' : status);

/** CPU seconds a process has used (user + system), from /proc: a load-independent cost figure. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return round((Number(fields[11]) + Number(fields[12])) / 100);
}

const iso = (unix: number | null) => (unix === null ? null : new Date(unix * 1000).toISOString().slice(0, 19));

/** What in-order delivery must leave for one simulated subscription (the generator's model). */
function expectedView(s: SimulatedSubscription): Partial<TenantView> {
  const billing = { active: 'active', past_due: 'past_due', unpaid: 'unpaid', paused: 'paused', canceled: 'canceled', new: null }[s.phase];
  return {
    slug: s.state.slug as string,
    name: s.state.customerName as string,
    status: s.phase === 'paused' || s.phase === 'canceled' ? 'suspended' : s.everSuspended ? 'provisioning' : 'pending',
    tier: Object.entries({ starter: 'price_1SiloStarterMonthly00001', pro: 'price_1SiloProMonthly000000001', enterprise: 'price_1SiloEnterpriseMonthly01' })
      .find(([, price]) => price === s.state.plan.priceId)?.[0],
    stripe_customer_id: s.state.customerId,
    billing_status: billing,
    past_due_since: iso(s.pastDueSince),
    suspend_reason: s.phase === 'paused' ? 'billing: subscription paused' : s.phase === 'canceled' ? 'billing: subscription canceled' : null,
    offboarding_scheduled: s.phase === 'canceled',
    last_event_created: String(s.at),
    deleted: false,
    provisioning_queued: s.phase !== 'canceled',
    deprovision_jobs: 0,
  };
}

describe('webhook abuse: Stripe events redelivered, shuffled and mixed with forged requests', () => {
  let stack: ReliabilityStack;
  let referenceRedis: OwnedRedis | undefined;
  const pools: Pool[] = [];

  beforeAll(async () => {
    stack = await ReliabilityStack.create('relwh');
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await stack?.cleanup();
    await referenceRedis?.kill();
  });

  it(`${EVENTS} events delivered 1..${MAX_DELIVERIES} times each in a shuffled order with forged, stale, malformed and oversized requests end in the state of a clean in-order delivery`, async () => {
    const started = Date.now();
    const seed = runSeed();
    const rnd = seededRandom(seed);
    const figures: Record<string, unknown> = { seed, events: EVENTS, subscriptions: SUBSCRIPTIONS, concurrency: CONCURRENCY };
    const record = () => recordFigures('webhook abuse', figures);

    // ── The traffic: realistic subscription lives, exactly EVENTS events ──
    const traffic = generateStripeTraffic(rnd, { total: EVENTS, subscriptions: SUBSCRIPTIONS, label: 'wh' });
    const validIds = new Set(traffic.events.map((e) => e.id));
    expect(traffic.events).toHaveLength(EVENTS);
    expect(validIds.size).toBe(EVENTS);
    const byType: Record<string, number> = {};
    for (const e of traffic.events) byType[e.type] = (byType[e.type] ?? 0) + 1;
    const finalPhases: Record<string, number> = {};
    for (const s of traffic.subscriptions) finalPhases[s.phase] = (finalPhases[s.phase] ?? 0) + 1;
    Object.assign(figures, { eventTypes: byType, finalPhases, unrelatedEvents: traffic.unrelated.length });

    // ── Deliveries: each event 1..MAX times, plus forged requests of every kind, shuffled ──
    const deliveries: Delivery[] = [];
    for (const event of traffic.events) {
      const payload = JSON.stringify(event, null, 2);
      const times = 1 + Math.floor(rnd() * MAX_DELIVERIES);
      for (let i = 0; i < times; i++) deliveries.push({ kind: 'valid', event, payload });
    }
    const forgedIds = new Set<string>();
    /** A forged event that would visibly change a real tenant if accepted: a cancellation, a pause or an upgrade, newer than anything real. */
    const forged = (): StripeEventFixture => {
      const s = traffic.subscriptions[Math.floor(rnd() * traffic.subscriptions.length)] as SimulatedSubscription;
      const at = nowSeconds();
      const which = Math.floor(rnd() * 3);
      const e = which === 0
        ? stripeEvent('customer.subscription.deleted', subscriptionObject({ ...s.state, status: 'canceled' }, at), { created: at })
        : which === 1
          ? stripeEvent('customer.subscription.paused', subscriptionObject({ ...s.state, status: 'paused' }, at), { created: at })
          : stripeEvent('customer.subscription.updated', subscriptionObject({ ...s.state, status: 'active', plan: { ...s.state.plan, priceId: 'price_1SiloEnterpriseMonthly01', lookupKey: 'silo_enterprise_monthly' } }, at), { created: at });
      forgedIds.add(e.id);
      return e;
    };
    const unknownSecret = `whsec_${randomBytes(24).toString('hex')}`;
    const kinds = Object.keys(ABUSE) as AbuseKind[];
    for (const kind of kinds) {
      for (let i = 0; i < (kind === 'oversized' ? OVERSIZED : PER_KIND); i++) {
        const e = forged();
        const payload = JSON.stringify(e);
        let body = payload;
        let sign: () => string | null = () => signatureFor(body, { secret: WEBHOOK_SECRET });
        switch (kind) {
          case 'bad_signature':
            if (i % 2 === 0) {
              // Tampered: signed as an active subscription, delivered as a cancellation.
              const signed = payload.replace('"status":"canceled"', '"status":"active"').replace('"status":"paused"', '"status":"active"') + ' ';
              sign = () => signatureFor(signed, { secret: WEBHOOK_SECRET });
            } else {
              sign = () => `t=${nowSeconds()},v1=${randomBytes(32).toString('hex')}`;
            }
            break;
          case 'unknown_secret':
            sign = () => signatureFor(payload, { secret: unknownSecret });
            break;
          case 'stale_timestamp': {
            // A captured delivery replayed later: correctly signed, but 5 min to 3 days old.
            const age = 301 + Math.floor(rnd() * 3 * 86_400);
            sign = () => signatureFor(payload, { secret: WEBHOOK_SECRET, timestamp: nowSeconds() - age });
            break;
          }
          case 'missing_header':
            sign = () => null;
            break;
          case 'malformed_json': {
            const variants = [
              payload.slice(0, Math.floor(payload.length / 2)),
              'not json at all',
              '[{"id":"evt_1"}]',
              JSON.stringify({ ...e, type: undefined }),
              JSON.stringify({ ...e, created: 'yesterday' }),
              JSON.stringify({ ...e, data: { object: [1, 2, 3] } }),
              JSON.stringify({ ...e, object: 'customer' }),
            ];
            body = variants[i % variants.length] as string;
            break;
          }
          case 'oversized': {
            const big = { ...e, data: { object: { ...e.data.object, metadata: { blob: 'x'.repeat(1024 * 1024 + 1024) } } } };
            body = JSON.stringify(big);
            break;
          }
        }
        deliveries.push({ kind, id: e.id, payload: body, sign });
      }
    }
    const order = shuffle(deliveries, rnd);
    const valid = deliveries.filter((d) => d.kind === 'valid').length;
    const abuseCounts = Object.fromEntries(kinds.map((k) => [k, deliveries.filter((d) => d.kind === k).length]));
    Object.assign(figures, { deliveries: order.length, validDeliveries: valid, duplicateDeliveries: valid - EVENTS, abuseRequests: order.length - valid, abuseByKind: abuseCounts });
    record();

    // ── Two installations, worker off: the abused one, and a clean reference (own control DB, own
    // redis-server: directory keys are slugs, the same in both) that gets every event once, in order ──
    const cp = await stack.controlPlane({ JOB_WORKER_ENABLED: 'false', TIERS_FILE: PLANS_FILE, LOG_LEVEL: 'warn' });
    const refDb = await stack.secondControlDb('relwhref');
    referenceRedis = await OwnedRedis.start();
    const ref = await stack.controlPlane({ DATABASE_URL: refDb.url, REDIS_URL: referenceRedis.url, JOB_WORKER_ENABLED: 'false', TIERS_FILE: PLANS_FILE, LOG_LEVEL: 'warn' });
    await Promise.all([cp.start(), ref.start()]);
    const refPool = new Pool({ connectionString: refDb.url, max: 2 });
    refPool.on('error', () => undefined);
    pools.push(refPool);

    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const freshAgent = new Agent({ keepAlive: false }); // oversized bodies: the server answers 413 and closes
    const send = (url: string, payload: string, signature: string | null, via = agent): Promise<HttpResult> =>
      httpCall(url, '/webhooks/stripe', {
        rawBody: payload,
        headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)', ...(signature === null ? {} : { 'stripe-signature': signature }) },
        agent: via,
        timeoutMs: 30_000,
      });
    /**
     * A genuine delivery as Stripe makes it: freshly signed, and retried when the endpoint answers 5xx or
     * the connection fails (the documented contract: nothing was committed, Stripe retries). Counted in
     * the figures; the final-state comparison below is what proves nothing was half-applied.
     */
    const serverErrors: string[] = [];
    const deliverValid = async (url: string, payload: string, via = agent): Promise<HttpResult> => {
      for (let attempt = 1; ; attempt++) {
        const res = await send(url, payload, signatureFor(payload, { secret: WEBHOOK_SECRET }), via);
        if ((res.status < 500 && res.status !== 0) || attempt === 6) return res;
        serverErrors.push(`${url === cp.url ? 'abused' : 'reference'}: HTTP ${res.status} ${res.code}`);
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    };

    const firstDeliveries = new Map<string, number>();
    const outcomes: Record<string, number> = {};
    const unexpected: string[] = [];
    const rejected: Record<string, number> = Object.fromEntries(kinds.map((k) => [k, 0]));
    const abusedRun = async () => {
      const t0 = Date.now();
      await mapLimit(order, CONCURRENCY, async (d) => {
        if (d.kind === 'valid') {
          const res = await deliverValid(cp.url, d.payload);
          if (res.status !== 200 || res.body?.received !== true) {
            unexpected.push(`valid ${d.event.type} ${d.event.id}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
            return;
          }
          if (res.body.duplicate === false) {
            firstDeliveries.set(d.event.id, (firstDeliveries.get(d.event.id) ?? 0) + 1);
            outcomes[res.body.outcome] = (outcomes[res.body.outcome] ?? 0) + 1;
          }
          return;
        }
        const want = ABUSE[d.kind];
        const res = await send(cp.url, d.payload, d.sign(), d.kind === 'oversized' ? freshAgent : agent);
        const reason = res.body?.error?.details?.reason;
        // The right status and stable code (and reason), and nothing an attacker could use: no secret, no stack.
        const leaks = res.text.includes('whsec_') || /\n\s+at /.test(res.text);
        if (res.status === want.status && res.code === want.code && (want.reason === undefined || reason === want.reason) && !leaks) rejected[d.kind]!++;
        else unexpected.push(`${d.kind} ${d.id}: HTTP ${res.status} ${res.code} ${reason ?? ''} ${res.text.slice(0, 200)}`);
      });
      return Date.now() - t0;
    };

    // In order per subscription (the unit Silo orders by: tenants are keyed by subscription), one event
    // at a time per subscription, several subscriptions side by side.
    const refProblems: string[] = [];
    const refAgent = new Agent({ keepAlive: true, maxSockets: REFERENCE_LANES });
    const lanes = [...traffic.subscriptions.map((s) => s.events), ...traffic.unrelated.map((e) => [e])];
    const referenceRun = async () => {
      const t0 = Date.now();
      await mapLimit(lanes, REFERENCE_LANES, async (lane) => {
        for (const e of lane) {
          const payload = JSON.stringify(e, null, 2);
          const res = await deliverValid(ref.url, payload, refAgent);
          if (res.status !== 200 || res.body?.duplicate !== false) refProblems.push(`${e.type} ${e.id}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        }
      });
      return Date.now() - t0;
    };

    const [abusedMs, referenceMs] = await Promise.all([abusedRun(), referenceRun()]);
    for (const a of [agent, freshAgent, refAgent]) a.destroy();
    Object.assign(figures, {
      abusedControlPlaneCpuS: cpuSeconds(cp.pid), referenceControlPlaneCpuS: cpuSeconds(ref.pid), loadAverage: round(loadavg()[0] ?? 0),
      abusedDeliveryMs: abusedMs, abusedDeliveriesPerSecond: round(order.length / (abusedMs / 1000)), referenceDeliveryMs: referenceMs,
      rejectedByKind: rejected, rejections: Object.values(rejected).reduce((a, b) => a + b, 0), unexpectedResponses: unexpected.length,
      referenceRefused: refProblems.length, serverErrorsRetried: serverErrors.length, firstServerErrors: serverErrors.slice(0, 3), firstDeliveryOutcomes: outcomes,
    });
    record();

    if (unexpected.length) throw new Error(`${unexpected.length} unexpected responses:\n${unexpected.slice(0, 5).join('\n')}\n${cp.output(40)}`);
    if (refProblems.length) throw new Error(`clean delivery refused ${refProblems.length} events:\n${refProblems.slice(0, 5).join('\n')}\n${ref.output(40)}`);
    expect(rejected).toEqual(abuseCounts);
    // Exactly one delivery of each event was the first (concurrent repeats waited and saw the duplicate).
    expect(firstDeliveries.size).toBe(EVENTS);
    expect([...firstDeliveries.values()].filter((n) => n !== 1)).toEqual([]);
    expect(cp.running).toBe(true);

    // ── Nothing half-written in the abused installation ──
    const abused = stack.control;
    const stored = await stack.sql<{ id: string; outcome: string }>('SELECT id, outcome FROM webhook_events');
    expect(stored).toHaveLength(validIds.size);
    expect(stored.filter((r) => !validIds.has(r.id)).map((r) => r.id)).toEqual([]); // no forged event stored
    expect(stored.filter((r) => r.outcome === 'processing')).toEqual([]);
    const [trail] = await stack.sql<{ tenants: number; without_created: number; without_job: number; foreign_causes: number; events_without_tenant: number; misattributed: number }>(`
      SELECT (SELECT count(*)::int FROM tenants) AS tenants,
             (SELECT count(*)::int FROM tenants t WHERE NOT EXISTS (
                SELECT 1 FROM audit_log a JOIN webhook_events w ON w.id = a.cause_id AND w.subscription_id = t.stripe_subscription_id
                WHERE a.tenant_id = t.id AND a.action = 'created' AND a.cause_type = 'stripe_event')) AS without_created,
             -- A subscription canceled before any paid-for event arrived never gets a provisioning job (payment-gated provisioning).
             (SELECT count(*)::int FROM tenants t WHERE t.billing_status IS DISTINCT FROM 'canceled' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id AND j.type = 'provision')) AS without_job,
             (SELECT count(*)::int FROM audit_log a WHERE a.cause_type = 'stripe_event' AND NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.id = a.cause_id)) AS foreign_causes,
             (SELECT count(*)::int FROM webhook_events w WHERE w.outcome <> 'ignored' AND w.tenant_id IS NULL) AS events_without_tenant,
             (SELECT count(*)::int FROM webhook_events w JOIN tenants t ON t.id = w.tenant_id WHERE t.stripe_subscription_id IS DISTINCT FROM w.subscription_id) AS misattributed`);
    figures.halfWritten = trail;
    record();
    expect(trail).toEqual({ tenants: SUBSCRIPTIONS, without_created: 0, without_job: 0, foreign_causes: 0, events_without_tenant: 0, misattributed: 0 });

    // ── Compare: the clean run matches the model; the abused run matches the clean run ──
    const reference = await tenantViews(refPool);
    const actual = await tenantViews(abused);
    expect(reference.size).toBe(SUBSCRIPTIONS);
    const modelMismatches: string[] = [];
    for (const s of traffic.subscriptions) {
      const got = reference.get(s.state.subscriptionId);
      const want = expectedView(s);
      const picked = got ? Object.fromEntries(Object.keys(want).map((k) => [k, got[k as keyof TenantView]])) : null;
      if (JSON.stringify(picked) !== JSON.stringify(want)) modelMismatches.push(`${s.state.subscriptionId} (${s.phase}): want ${JSON.stringify(want)} got ${JSON.stringify(picked)}`);
    }
    const mismatches: string[] = [];
    let statusOnlyPendingVsProvisioning = 0;
    for (const [sub, want] of reference) {
      const got = actual.get(sub);
      if (!got) {
        mismatches.push(`${sub}: no tenant in the abused installation`);
        continue;
      }
      if (got.status !== want.status && lifecycleClass(got.status) === lifecycleClass(want.status)) statusOnlyPendingVsProvisioning++;
      const norm = (v: TenantView) => ({ ...v, status: lifecycleClass(v.status) });
      if (JSON.stringify(norm(got)) !== JSON.stringify(norm(want))) mismatches.push(`${sub}: clean ${JSON.stringify(want)} abused ${JSON.stringify(got)}`);
    }
    const [refEvents] = (await refPool.query('SELECT count(*)::int AS n FROM webhook_events')).rows as Array<{ n: number }>;
    Object.assign(figures, {
      tenantsCompared: reference.size, mismatches: mismatches.length, modelMismatches: modelMismatches.length, statusOnlyPendingVsProvisioning,
      storedEventsAbused: stored.length, storedEventsReference: refEvents?.n, durationMs: Date.now() - started,
    });
    record();
    expect(modelMismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(actual.size).toBe(reference.size);
    expect(refEvents?.n).toBe(EVENTS);

    // ── The directory the runtime reads agrees with the abused control DB (publishes after commit raced
    // for the same tenants; the last one written must be the latest state). Publishing is asynchronous
    // after the acknowledgement: poll briefly. ──
    const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 1 });
    try {
      const stale = async () => {
        const out: string[] = [];
        for (const [sub, v] of actual) {
          const raw = await redis.get(directoryKeys.slug(v.slug));
          const entry = raw ? (JSON.parse(raw) as { status: string; tier: string }) : null;
          if (entry?.status !== v.status || entry?.tier !== v.tier) out.push(`${sub} ${v.slug}: db ${v.status}/${v.tier}, directory ${raw ? `${entry?.status}/${entry?.tier}` : 'missing'}`);
        }
        return out;
      };
      let disagreeing = await stale();
      for (let i = 0; i < 20 && disagreeing.length; i++) {
        await new Promise((r) => setTimeout(r, 250));
        disagreeing = await stale();
      }
      figures.directoryDisagreements = disagreeing.length;
      record();
      expect(disagreeing.slice(0, 5)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

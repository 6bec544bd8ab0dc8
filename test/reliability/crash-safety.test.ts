import { TERMINATOR_SECRET_NAME, terminatorRoleName } from '../../provisioning/local/terminator-role';
import { Agent } from 'node:http';
import { Client, Pool } from 'pg';
import { newSubscription, StripeEventFixture, stripeEvents, SubscriptionState } from '../support/stripe-fixtures';
import { tenantDbName } from '../../provisioning/local/pg-names';
import { LocalSecretStore } from '../../provisioning/secrets/local-secret-store';
import { testDatabaseUrl } from '../support/env';
import { httpCall } from './support/load';
import { runCli, ServiceProcess, sleep } from './support/processes';
import { percentile, recordFigures, round, runSeed, seededRandom, shuffle } from './support/report';
import { mapLimit, ReliabilityStack } from './support/stack';
import { deliverLikeStripe, DeliveryLog } from './support/stripe-sender';

/**
 * Scenario 1, crash safety. 50 subscriptions are bought (checkout.session.completed and
 * customer.subscription.created each, in random order, spread over a few seconds) while the
 * control plane (with its in-process worker) and a standalone worker are SIGKILLed at seeded
 * random moments and restarted. The test plays Stripe: every delivery that fails because the
 * server is down is retried until acknowledged. Afterwards the installation must be exactly what
 * a clean run would leave: one active tenant per subscription, one database + role + secret each
 * and nothing else, no drift for the reconciler, every event recorded, every tenant usable.
 */
const TENANTS = Number(process.env.RELIABILITY_CRASH_TENANTS ?? 50);
const KILLS = Number(process.env.RELIABILITY_CRASH_KILLS ?? 10);
/** Webhooks' first attempts are spread over this window, so kills land while events are in flight. */
const SPREAD_MS = Number(process.env.RELIABILITY_CRASH_SPREAD_MS ?? 10_000);
const LEASE_SECONDS = 3;

describe('reliability: crash safety (SIGKILL during provisioning from webhooks)', () => {
  let stack: ReliabilityStack;
  const seed = runSeed();
  const rnd = seededRandom(seed);

  beforeAll(async () => {
    stack = await ReliabilityStack.create('relcrash');
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it(`provisions ${TENANTS} tenants exactly once through ${KILLS} kills, with no orphan, no drift and no lost webhook`, async () => {
    const started = Date.now();
    const workerEnv = { JOB_LEASE_SECONDS: String(LEASE_SECONDS), JOB_POLL_INTERVAL_MS: '200', JOB_CONCURRENCY: '4', LOG_LEVEL: 'info' };
    // The control plane runs a worker too: three workers compete for jobs (the control plane's, a
    // standalone worker and `silo worker`), and killing the control plane kills one of them.
    const cp = await stack.controlPlane({ ...workerEnv, JOB_WORKER_ENABLED: 'true' });
    const workers = [stack.worker(workerEnv), stack.siloWorker(workerEnv)];
    await Promise.all([cp.start(), ...workers.map((w) => w.start())]);

    const subs: SubscriptionState[] = Array.from({ length: TENANTS }, (_, i) => newSubscription({ slug: `crash-${i}`, customerName: `Crash Customer ${i}` }));
    const events: StripeEventFixture[] = shuffle(subs.flatMap((s) => [stripeEvents.checkoutCompleted(s), stripeEvents.subscriptionCreated(s)]), rnd);
    const sendAt = events.map(() => Math.floor(rnd() * SPREAD_MS));

    // Stripe: each event first sent at its moment, then retried until acknowledged.
    const agent = new Agent({ keepAlive: false });
    const deliveryDeadline = Date.now() + SPREAD_MS + 60_000;
    const t0 = Date.now();
    const deliveries: Promise<DeliveryLog[]> = Promise.all(events.map(async (e, i) => {
      await sleep(sendAt[i] as number);
      return deliverLikeStripe(() => cp.url, e, deliveryDeadline, agent);
    }));
    let sending = true;
    void deliveries.finally(() => (sending = false));

    const allActive = async () => Number((await stack.sql<{ n: string }>(`SELECT count(*) AS n FROM tenants WHERE status = 'active'`))[0]?.n) === TENANTS;

    // The chaos: SIGKILL the worker, the control plane or both at seeded moments, each restarted
    // after a short pause. Mostly a process that is up and working; sometimes (1 in 5) one that is
    // still starting up, without waiting for its restart to finish.
    const kills: Array<{ at: number; target: string; inFlight: boolean; active: number; starting: boolean }> = [];
    const restarting = new Map<ServiceProcess, Promise<void>>();
    const ready = new Set<ServiceProcess>([cp, ...workers]);
    const restartMs: number[] = [];
    let killedWhileStarting = 0;
    const restart = (p: ServiceProcess, pauseMs: number) => {
      const previous = restarting.get(p) ?? Promise.resolve();
      restarting.set(p, previous.then(async () => {
        await sleep(pauseMs);
        const t = Date.now();
        try {
          await p.start();
          restartMs.push(Date.now() - t);
          ready.add(p);
        } catch {
          killedWhileStarting++; // the next restart is already queued
        }
      }));
    };
    const chaosDeadline = Date.now() + 120_000;
    while (kills.length < KILLS && Date.now() < chaosDeadline) {
      await sleep(250 + Math.floor(rnd() * 1_000));
      const r = rnd();
      const duringStartup = rnd() < 0.2;
      const worker = workers[Math.floor(rnd() * workers.length)] as ServiceProcess;
      const targets = (r < 0.45 ? [worker] : r < 0.85 ? [cp] : [cp, worker]).filter((p) => p.running && (duringStartup || ready.has(p)));
      if (!targets.length) continue;
      const active = Number((await stack.sql<{ n: string }>(`SELECT count(*) AS n FROM tenants WHERE status = 'active'`))[0]?.n);
      kills.push({ at: Date.now() - t0, target: targets.map((p) => p.name).join('+'), inFlight: sending, active, starting: targets.some((p) => !ready.has(p)) });
      await Promise.all(targets.map((p) => p.kill('SIGKILL')));
      for (const p of targets) {
        ready.delete(p);
        restart(p, Math.floor(rnd() * 400));
      }
    }
    await Promise.all(restarting.values());
    for (const p of [cp, ...workers]) if (!p.running) await p.start();
    const chaosMs = Date.now() - t0;

    const logs = await deliveries;
    const deliveredMs = Date.now() - t0;
    const undelivered = logs.filter((l) => !l.delivered);
    const retried = logs.filter((l) => l.failures > 0);
    const figures: Record<string, unknown> = {
      seed, tenants: TENANTS, webhooksSent: events.length, deliveryAttempts: logs.reduce((a, l) => a + l.attempts, 0),
      webhooksRetried: retried.length, failedAttempts: logs.reduce((a, l) => a + l.failures, 0), undelivered: undelivered.length,
      kills: kills.length, killsWhileWebhooksInFlight: kills.filter((k) => k.inFlight).length,
      killsBeforeAllActive: kills.filter((k) => k.active < TENANTS).length, killsOfStartingProcess: kills.filter((k) => k.starting).length,
      workers: 1 + workers.length, controlPlaneKills: cp.kills, workerKills: workers.reduce((a, w) => a + w.kills, 0), restarts: cp.starts + workers.reduce((a, w) => a + w.starts, 0) - 1 - workers.length,
      restartP50Ms: restartMs.length ? percentile(restartMs, 50) : null, killedWhileStarting,
      chaosSeconds: round(chaosMs / 1000), deliveredSeconds: round(deliveredMs / 1000),
    };
    recordFigures('Crash safety', figures);
    expect(kills.length).toBe(KILLS);
    expect(undelivered).toEqual([]);

    // Recovery: both processes up; leases of jobs that died with a worker expire and the jobs resume.
    const recoveryDeadline = Date.now() + 60_000;
    while (!(await allActive()) && Date.now() < recoveryDeadline) await sleep(250);
    figures.allActiveSeconds = round((Date.now() - t0) / 1000);
    recordFigures('Crash safety', figures);

    // 1. One tenant per subscription, active, created once and activated once.
    const tenants = await stack.sql<{ id: string; slug: string; status: string; stripe_subscription_id: string; database: string | null; secret_ref: string | null; username: string | null }>(
      `SELECT t.id, t.slug, t.status, t.stripe_subscription_id, c.database, c.secret_ref, c.username
       FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id ORDER BY t.slug`);
    const stuck = tenants.filter((t) => t.status !== 'active');
    const jobsOfStuck = stuck.length ? await stack.sql(`SELECT tenant_id, type, status, attempts, last_error FROM jobs WHERE tenant_id = ANY($1)`, [stuck.map((t) => t.id)]) : [];
    expect({ stuck, jobsOfStuck }).toEqual({ stuck: [], jobsOfStuck: [] });
    expect(tenants).toHaveLength(TENANTS);
    expect(tenants.map((t) => t.stripe_subscription_id).sort()).toEqual(subs.map((s) => s.subscriptionId).sort());
    expect(tenants.map((t) => t.slug).sort()).toEqual(subs.map((s) => s.slug).sort());
    const audit = await stack.sql<{ tenant_id: string; created: string; activated: string }>(
      `SELECT tenant_id, count(*) FILTER (WHERE action = 'created') AS created,
              count(*) FILTER (WHERE action = 'status_changed' AND to_status = 'active') AS activated
       FROM audit_log GROUP BY tenant_id`);
    expect(audit.filter((a) => Number(a.created) !== 1 || Number(a.activated) !== 1)).toEqual([]);
    expect(audit).toHaveLength(TENANTS);

    // 1b. No tenant ever had two job attempts running at once, across the three workers and their kills
    // (a killed attempt ends when its lease expires and it is re-claimed or failed).
    const runs = await stack.sql<{ tenant_id: string; started_at: Date; finished_at: Date | null }>(
      `SELECT j.tenant_id, r.started_at, r.finished_at FROM job_runs r JOIN jobs j ON j.id = r.job_id ORDER BY j.tenant_id, r.started_at`);
    const overlapping = runs.filter((r, i) => i > 0 && runs[i - 1]?.tenant_id === r.tenant_id && (runs[i - 1]?.finished_at === null || r.started_at < (runs[i - 1]?.finished_at as Date)));
    figures.jobRuns = runs.length;
    expect(overlapping).toEqual([]);

    // 2. Exactly one marked database and role per tenant, one live secret each; nothing else.
    const expectedNames = tenants.map((t) => tenantDbName(t.id)).sort();
    expect(tenants.map((t) => t.database).sort()).toEqual(expectedNames);
    const marked = await stack.markedObjects();
    expect(marked.databases).toEqual(expectedNames);
    // Besides the tenants' roles and secrets, exactly one of the installation's own: the runtime's backend terminator.
    expect(marked.roles).toEqual([...expectedNames, terminatorRoleName(stack.db.name)].sort());
    const secrets = await stack.sql<{ name: string; tenant_id: string }>(`SELECT name, tenant_id FROM local_secrets WHERE deleted_at IS NULL ORDER BY name`);
    expect(secrets.map((s) => s.name)).toEqual([...tenants.map((t) => `silo/tenants/${t.id}`), TERMINATOR_SECRET_NAME].sort());
    // No tenant database is left open to PUBLIC (a crash between CREATE DATABASE and its grants must not leave it so).
    const publicAcl = await stack.sql<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = ANY($1)
         AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))`, [expectedNames]);
    expect(publicAcl).toEqual([]);

    // 3. No lost webhook: every event id sent is stored, and none is left half-processed.
    const stored = await stack.sql<{ id: string; outcome: string }>(`SELECT id, outcome FROM webhook_events WHERE id = ANY($1)`, [events.map((e) => e.id)]);
    expect(stored.map((s) => s.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(stored.filter((s) => !['applied', 'unchanged'].includes(s.outcome))).toEqual([]);
    figures.webhookEventsStored = stored.length;

    // 4. The reconciler agrees: no orphan, nothing missing, no stuck provisioning, no stale directory
    // entry. A process killed between a commit and its directory write leaves the tenant's
    // published_version behind; the workers' directory-repair task republishes it within seconds.
    const unpublished = async () => Number((await stack.sql<{ n: string }>(`SELECT count(*) AS n FROM tenants WHERE published_version IS DISTINCT FROM version`))[0]?.n);
    figures.unpublishedAfterRecovery = await unpublished();
    const repairDeadline = Date.now() + 30_000;
    while ((await unpublished()) > 0 && Date.now() < repairDeadline) await sleep(250);
    figures.directoryRepairedSeconds = round((Date.now() - t0) / 1000);
    const reconcileOnce = async () => {
      const run = await runCli(['reconcile', '--json'], stack.cliEnv());
      return { run, report: JSON.parse(run.stdout || '{}') as { drift: Array<{ kind: string; object: string; repaired: boolean }>; checked: { tenants: number; databases: number; secrets: number } } };
    };
    const { run: reconcile, report } = await reconcileOnce();
    figures.reconcileDrift = report.drift?.map((d) => `${d.kind}:${d.object}`) ?? reconcile.stderr;
    recordFigures('Crash safety', figures);
    expect(reconcile.code).toBe(0);
    expect(report.drift).toEqual([]);
    expect(report.checked).toEqual({ tenants: TENANTS, databases: TENANTS, secrets: TENANTS, directory: true });
    const second = await reconcileOnce();
    expect({ code: second.run.code, drift: second.report.drift }).toEqual({ code: 0, drift: [] });

    // 5. Each tenant is usable: its secret decrypts, its role logs in to its own database, and a
    // query through a runtime with a freshly issued API key reaches it.
    const secretPool = new Pool({ connectionString: stack.db.url, max: 2 });
    const store = new LocalSecretStore(secretPool, Buffer.from(stack.masterKey, 'base64'));
    const server = new URL(testDatabaseUrl());
    try {
      await mapLimit(tenants, 6, async (t) => {
        const secret = await store.get(t.secret_ref as string);
        expect(secret.username).toBe(t.username);
        const c = new Client({ host: server.hostname, port: Number(server.port || 5432), database: t.database as string, user: secret.username, password: secret.password });
        await c.connect();
        try {
          const { rows } = await c.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d');
          expect(rows).toEqual([{ u: t.username, d: t.database }]);
        } finally {
          await c.end();
        }
      });
    } finally {
      await secretPool.end();
    }
    const runtime = await stack.runtime();
    await runtime.start();
    // A 503 (the runtime shedding load while it opens 50 new pools on a busy machine) is retried,
    // as a client would; anything else counts against the tenant.
    let runtimeRetries = 0;
    const usable = await mapLimit(tenants, 4, async (t) => {
      const key = await stack.api(cp.url, 'POST', `/v1/tenants/${t.id}/api-keys`, { name: 'crash-check' });
      if (key.status !== 201) return `${t.slug}: key ${key.status}`;
      for (let attempt = 1; ; attempt++) {
        const q = await httpCall(runtime.url, `/tenants/${t.slug}/v1/query`, { key: key.body.key, body: { sql: 'SELECT current_user AS u, count(*)::int AS n FROM silo._silo_meta' } });
        if (q.status === 503 && attempt < 6) {
          runtimeRetries++;
          await sleep(300 * attempt);
          continue;
        }
        return q.status === 200 && q.body.rows?.[0]?.u === t.username ? 'ok' : `${t.slug}: ${q.status} ${q.text.slice(0, 200)}`;
      }
    });
    figures.runtimeRetries503 = runtimeRetries;
    expect(usable.filter((u) => u !== 'ok')).toEqual([]);
    figures.usableTenants = usable.length;
    figures.dataLost = 0;
    figures.totalSeconds = round((Date.now() - started) / 1000);
    recordFigures('Crash safety', figures);
  });
});

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createMetricsRegistry } from '../common/http/metrics';
import type { PoolManager } from './pool-manager';
import type { CacheSource } from './tiered-cache';

export const OTHER_TENANTS = '_other';
export const NO_TENANT = '_none';

/**
 * Prometheus metrics of one runtime instance. The `tenant` label is bounded: a tenant gets its slug
 * as label while it has a pool and a slot is free (at most `tenantLabels` slots); a slot is reused
 * only once its tenant's pool is gone. Everyone else is counted under `_other`.
 */
export class RuntimeMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'tenant' | 'route' | 'status'>;
  private readonly errors: Counter<'tenant' | 'code'>;
  private readonly duration: Histogram<'tenant' | 'route'>;
  readonly connectSeconds: Histogram;
  readonly poolWait: Histogram<'via'>;
  readonly evictions: Counter<'reason'>;
  /** Backends the runtime had terminated (a statement that ignored its cancel), by how long until the server showed them gone. */
  readonly terminated: Histogram;
  readonly lookups: Counter<'cache' | 'source'>;
  /** PostgreSQL front door: transactions (a backend lease) and bytes relayed, by tenant and pool mode / direction. */
  readonly wireTransactions: Counter<'tenant' | 'mode'>;
  readonly wireBytes: Counter<'tenant' | 'direction'>;
  /** What the front door reports about its clients (set when it starts). */
  private wireClients: () => { transaction: number; session: number; waiting: number } = () => ({ transaction: 0, session: 0, waiting: 0 });
  /** tenantId → slug label; insertion order is the reuse order. */
  private readonly labelled = new Map<string, string>();

  constructor(private readonly pools: () => PoolManager | null, private readonly tenantLabels: number) {
    const { registry } = createMetricsRegistry('tenant-runtime');
    this.registry = registry;
    this.requests = new Counter({ name: 'silo_runtime_requests_total', help: 'Tenant requests by route and HTTP status', labelNames: ['tenant', 'route', 'status'] as const, registers: [registry] });
    this.errors = new Counter({ name: 'silo_runtime_errors_total', help: 'Refused or failed tenant requests by error code', labelNames: ['tenant', 'code'] as const, registers: [registry] });
    this.duration = new Histogram({
      name: 'silo_runtime_request_duration_seconds', help: 'Tenant request latency', labelNames: ['tenant', 'route'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry],
    });
    this.connectSeconds = new Histogram({ name: 'silo_runtime_connect_duration_seconds', help: 'Time to open a tenant database connection', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2], registers: [registry] });
    this.poolWait = new Histogram({
      name: 'silo_runtime_pool_wait_seconds', help: 'Time a request waited for a tenant connection, by where it came from: idle (a free connection of the tenant), release (another request of the tenant returned one) or connect (a new connection)',
      labelNames: ['via'] as const, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2], registers: [registry],
    });
    this.evictions = new Counter({ name: 'silo_runtime_pool_evictions_total', help: 'Connections closed to make room for another tenant under the connection budget, by reason: idle (the least recently used idle connection) or handover (released while another tenant waited)', labelNames: ['reason'], registers: [registry] });
    this.terminated = new Histogram({
      name: 'silo_runtime_backends_terminated_seconds', help: 'Backends abandoned (a statement that ignored its cancel, shutdown) and terminated: time from abandoning to the server showing them gone; counted against the budget meanwhile',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry],
    });
    this.lookups = new Counter({ name: 'silo_runtime_cache_lookups_total', help: 'Directory and API key lookups by where the answer came from', labelNames: ['cache', 'source'] as const, registers: [registry] });

    this.wireTransactions = new Counter({ name: 'silo_runtime_pg_transactions_total', help: 'PostgreSQL front door: backend leases (one per transaction in transaction mode, one per session in session mode)', labelNames: ['tenant', 'mode'] as const, registers: [registry] });
    this.wireBytes = new Counter({ name: 'silo_runtime_pg_bytes_total', help: 'PostgreSQL front door: bytes relayed, by direction (in: from clients, out: to clients)', labelNames: ['tenant', 'direction'] as const, registers: [registry] });
    const wire = () => this.wireClients();
    new Gauge({
      name: 'silo_runtime_pg_clients', help: 'PostgreSQL front door: authenticated client connections by pool mode, and those waiting for a backend', labelNames: ['mode'] as const, registers: [registry],
      collect() {
        const w = wire();
        this.set({ mode: 'transaction' }, w.transaction);
        this.set({ mode: 'session' }, w.session);
        this.set({ mode: 'waiting' }, w.waiting);
      },
    });
    const poolStats = () => this.pools()?.stats() ?? [];
    const labelOf = (tenantId: string) => this.labelOf(tenantId);
    const manager = () => this.pools();
    new Gauge({
      name: 'silo_runtime_pool_connections', help: 'Tenant pool connections by state (terminating: abandoned, still shown by the server)', labelNames: ['tenant', 'state'] as const, registers: [registry],
      collect() {
        this.reset();
        const sums = new Map<string, { idle: number; busy: number; opening: number; terminating: number }>();
        for (const p of poolStats()) {
          const label = labelOf(p.tenantId);
          const s = sums.get(label) ?? { idle: 0, busy: 0, opening: 0, terminating: 0 };
          s.idle += p.idle; s.busy += p.busy; s.opening += p.opening; s.terminating += p.terminating;
          sums.set(label, s);
        }
        for (const [tenant, s] of sums) for (const state of ['idle', 'busy', 'opening', 'terminating'] as const) this.set({ tenant, state }, s[state]);
      },
    });
    new Gauge({
      name: 'silo_runtime_pool_waiting', help: 'Requests waiting for a tenant connection', labelNames: ['tenant'] as const, registers: [registry],
      collect() {
        this.reset();
        const sums = new Map<string, number>();
        for (const p of poolStats()) sums.set(labelOf(p.tenantId), (sums.get(labelOf(p.tenantId)) ?? 0) + p.waiting);
        for (const [tenant, n] of sums) this.set({ tenant }, n);
      },
    });
    new Gauge({ name: 'silo_runtime_connections', help: 'Open tenant connections on this replica (never above the budget)', registers: [registry], collect() { this.set(manager()?.connections ?? 0); } });
    new Gauge({ name: 'silo_runtime_connects_in_flight', help: 'Tenant connections being opened (capped per database server)', registers: [registry], collect() { this.set(manager()?.connectsInFlight ?? 0); } });
    new Gauge({ name: 'silo_runtime_pools', help: 'Tenant pools on this replica', registers: [registry], collect() { this.set(manager()?.poolCount ?? 0); } });
  }

  /** The label to use for a tenant that is being served (assigns a slot when one is free). */
  tenantLabel(tenantId: string, slug: string): string {
    const have = this.labelled.get(tenantId);
    if (have) return have;
    if (this.labelled.size >= this.tenantLabels && !this.freeSlot()) return OTHER_TENANTS;
    this.labelled.set(tenantId, slug);
    return slug;
  }

  observe(tenant: string, route: string, status: number, code: string | null, seconds: number): void {
    this.requests.inc({ tenant, route, status: String(status) });
    if (code) this.errors.inc({ tenant, code });
    this.duration.observe({ tenant, route }, seconds);
  }

  /** The front door's client counts, read at scrape time. */
  reportWireClients(read: () => { transaction: number; session: number; waiting: number }): void {
    this.wireClients = read;
  }

  lookup(cache: string, source: CacheSource): void {
    this.lookups.inc({ cache, source });
  }

  private labelOf(tenantId: string): string {
    return this.labelled.get(tenantId) ?? OTHER_TENANTS;
  }

  /** Reuses the slot of a labelled tenant that no longer has a pool, dropping its series. */
  private freeSlot(): boolean {
    const pools = this.pools();
    for (const [tenantId, slug] of this.labelled) {
      if (pools?.has(tenantId)) continue;
      this.labelled.delete(tenantId);
      for (const m of [this.requests, this.errors, this.duration, this.wireTransactions, this.wireBytes] as Array<Counter<string> | Histogram<string>>) {
        // prom-client removes exact label sets only: drop every series carrying this tenant.
        const hashes = (m as unknown as { hashMap: Record<string, { labels: Record<string, string> }> }).hashMap;
        for (const { labels } of Object.values(hashes ?? {})) if (labels.tenant === slug) m.remove(labels);
      }
      return true;
    }
    return false;
  }
}

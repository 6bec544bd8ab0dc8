import type { FleetStatus } from '../../migrations/migration-status';
import { ROLES } from '../common/permissions';
import type { PeriodicTask } from '../jobs/periodic-task.entity';
import type { OperatorToken } from '../operators/operator-token.entity';
import type { Operator } from '../operators/operator.entity';
import { FAILURE_OUTCOMES } from './billing-events-page';
import { Html, html } from './html';
import { schemaCounts } from './migrations-page';
import { statusBadge } from './tenant-pages';
import { layout, Viewer, when } from './views';

export interface FleetFigures {
  tenants: Array<{ status: string; tier: string; n: number }>;
  /** null when the viewer's role may not read operations (the job queue). */
  jobs: { byStatus: Array<{ type: string; status: string; n: number }>; failedLastDay: number } | null;
  /** Schema states from the mirror (`mirrorStatus`), or why the migration files could not be read. */
  schema: FleetStatus | { error: string };
  /** Stored Stripe events per outcome over the last 24 h; null when the role may not read billing. */
  webhooks: Array<{ outcome: string; n: number }> | null;
  /** The periodic reconcile's row in `periodic_tasks` (null inside: never scheduled here); null when the role may not read operations. */
  reconcile: { task: PeriodicTask | null; intervalSeconds: number } | null;
}

/** The periodic reconcile's recorded result (periodic-runner.ts), read defensively: it is jsonb. */
function reconcileCard(r: NonNullable<FleetFigures['reconcile']>): Html {
  const t = r.task;
  const result = (t?.lastResult ?? null) as { drift?: unknown; kinds?: unknown; tenants?: unknown; checked?: Record<string, unknown> } | null;
  let body: Html;
  if (!t || !t.lastFinishedAt) {
    body = html`<p data-reconcile="not-recorded"><strong>Not recorded.</strong> ${r.intervalSeconds > 0
      ? html`No periodic reconcile has finished yet (it runs every ${r.intervalSeconds} s in the worker, the first run one interval after start).`
      : html`The periodic reconcile is off (RECONCILE_INTERVAL_SECONDS=0).`} Runs of <code>silo reconcile</code> from the CLI are not recorded anywhere.</p>`;
  } else if (t.lastOutcome !== 'ok') {
    body = html`<p data-reconcile="failed"><span class="error">The last run failed</span> ${when(t.lastFinishedAt)}: ${t.lastError ?? 'no error recorded'}</p>`;
  } else {
    const drift = typeof result?.drift === 'number' ? result.drift : null;
    const kinds = Array.isArray(result?.kinds) ? (result.kinds as unknown[]).map(String) : [];
    const tenants = Array.isArray(result?.tenants) ? (result.tenants as unknown[]).map(String) : [];
    const checked = result?.checked ?? {};
    body = html`<p data-reconcile="recorded"><span class="big${drift ? ' error' : ''}" data-stat="drift">${drift ?? '?'}</span> drift item${drift === 1 ? '' : 's'} found by the run that finished ${when(t.lastFinishedAt)} (worker <code>${t.lastWorker ?? '?'}</code>; report and safe repairs only)</p>
${kinds.length ? html`<p>Kinds: ${kinds.map((k, i) => html`${i ? ', ' : ''}<code>${k}</code>`)}</p>` : ''}
${tenants.length ? html`<p>Tenants: ${tenants.map((s, i) => html`${i ? ', ' : ''}${s}`)}${drift !== null && tenants.length < drift ? html` <span class="muted">(at most 20 named)</span>` : ''}</p>` : ''}
<p class="muted">Checked ${String(checked.tenants ?? '?')} tenants, ${String(checked.databases ?? '?')} databases, ${String(checked.secrets ?? '?')} secrets; directory cache ${checked.directory ? 'checked' : 'not checked'}.</p>`;
  }
  return html`<section class="card" aria-labelledby="rec-h"><h2 id="rec-h">Drift from the last reconcile</h2>${body}</section>`;
}

function webhooksCard(counts: Array<{ outcome: string; n: number }>): Html {
  const failing = counts.filter((c) => FAILURE_OUTCOMES.includes(c.outcome)).reduce((a, c) => a + c.n, 0);
  return html`<section class="card" aria-labelledby="wh-h"><h2 id="wh-h">Webhook failures</h2>
<p><a href="/console/billing-events?outcome=ignored"><span class="big${failing ? ' error' : ''}" data-stat="webhook-ignored">${failing}</span> ignored Stripe events in the last 24 h</a></p>
<p class="muted">Events Silo stored and acknowledged but that had no effect. Deliveries refused before they were stored (bad signature, errors Stripe retries) are not counted: they are in the control plane's log only.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">Outcome (24 h)</th><th scope="col">Events</th></tr></thead>
<tbody>${counts.length ? counts.map((c) => html`<tr><td><a href="/console/billing-events?outcome=${c.outcome}">${c.outcome}</a></td><td>${c.n}</td></tr>`) : html`<tr><td colspan="2">No Stripe events received in the last 24 h.</td></tr>`}</tbody></table></div>
<p><a href="/console/billing-events">All recent billing events</a></p></section>`;
}

export function fleetBody(f: FleetFigures): Html {
  const statuses = [...new Set(f.tenants.map((r) => r.status))];
  const tiers = [...new Set(f.tenants.map((r) => r.tier))];
  const n = (status: string, tier: string) => f.tenants.find((r) => r.status === status && r.tier === tier)?.n ?? 0;
  const total = f.tenants.reduce((a, r) => a + r.n, 0);
  const jobs = f.jobs;
  const depth = jobs?.byStatus.filter((r) => r.status === 'queued').reduce((a, r) => a + r.n, 0) ?? 0;
  const running = jobs?.byStatus.filter((r) => r.status === 'running').reduce((a, r) => a + r.n, 0) ?? 0;
  return html`<div class="stats"><div class="stat"><span class="big" data-stat="tenants">${total}</span> tenants</div>
${jobs ? html`<div class="stat"><span class="big" data-stat="queued">${depth}</span> jobs queued</div>
<div class="stat"><span class="big">${running}</span> running</div>
<div class="stat"><span class="big${jobs.failedLastDay ? ' error' : ''}" data-stat="failed">${jobs.failedLastDay}</span> failed (24 h)</div>` : ''}</div>
<section class="card" aria-labelledby="by-h"><h2 id="by-h">Tenants by status and tier</h2><div class="table-wrap"><table><thead><tr><th scope="col">Status</th>${tiers.map((t) => html`<th scope="col">${t}</th>`)}<th scope="col">All</th></tr></thead>
<tbody>${statuses.map((s) => html`<tr><th scope="row"><a href="/console/tenants?status=${s}">${statusBadge(s)}</a></th>${tiers.map((t) => html`<td>${n(s, t)}</td>`)}<td>${tiers.reduce((a, t) => a + n(s, t), 0)}</td></tr>`)}</tbody></table></div></section>
${jobs ? html`<section class="card" aria-labelledby="q-h"><h2 id="q-h">Job queue</h2><div class="table-wrap"><table><thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Jobs</th></tr></thead>
<tbody>${jobs.byStatus.length ? jobs.byStatus.map((r) => html`<tr><td>${r.type}</td><td>${statusBadge(r.status)}</td><td>${r.n}</td></tr>`) : html`<tr><td colspan="3">Nothing queued, running or failed in the last day.</td></tr>`}</tbody></table></div></section>` : ''}
<section class="card" aria-labelledby="schema-h"><h2 id="schema-h">Schema versions</h2>${'error' in f.schema ? html`<p class="error">The tenant migrations could not be read: ${f.schema.error}</p>` : schemaCounts(f.schema)}<p><a href="/console/migrations">Fleet migrations</a></p></section>
${f.reconcile ? reconcileCard(f.reconcile) : ''}
${f.webhooks ? webhooksCard(f.webhooks) : ''}`;
}

export function fleetPage(v: Viewer, f: FleetFigures): Html {
  return layout('Fleet', html`<h1>Fleet</h1><div data-live="/console/live/fleet"><div data-fragment="fleet">${fleetBody(f)}</div></div>`, v, 'fleet');
}

const tokenState = (t: OperatorToken, now: Date) => (t.revokedAt ? 'revoked' : t.expiresAt <= now ? 'expired' : 'active');

export function operatorsPage(v: Viewer, ops: Array<{ op: Operator; tokens: OperatorToken[] }>, now: Date): Html {
  const write = v.can('operators:write');
  const roleSelect = (current: string) => html`<select name="role">${ROLES.map((r) => html`<option${r === current ? html` selected` : ''}>${r}</option>`)}</select>`;
  const rows = ops.map(({ op, tokens }) => html`<section class="card" aria-label="${op.email}"><h2>${op.name} <span class="muted">${op.email}</span> ${op.disabledAt ? html`<span class="badge s-failed">disabled</span>` : ''}</h2>
<p>Role <strong>${op.role}</strong> · created ${when(op.createdAt)}</p>
${write ? html`<div class="actions">
<form data-api="/v1/operators/${op.id}" data-method="PATCH" data-confirm="Change the role of ${op.email}?"><label>Role ${roleSelect(op.role)}</label><button type="submit">Change role</button></form>
${op.disabledAt
      ? html`<form data-api="/v1/operators/${op.id}" data-method="PATCH" data-confirm="Enable ${op.email}?"><input type="hidden" name="disabled" value="false" data-type="bool"><button type="submit">Enable</button></form>`
      : html`<form data-api="/v1/operators/${op.id}" data-method="PATCH" data-confirm="Disable ${op.email}? Their tokens and sessions end."><input type="hidden" name="disabled" value="true" data-type="bool"><button type="submit">Disable</button></form>
<form data-api="/v1/operators/${op.id}/tokens" data-method="POST" data-show="token"><label>Token name <input name="name" required maxlength="100"></label><label>Days <input name="expiresInDays" type="number" min="1" max="365" value="30" data-type="number"></label><button type="submit">Issue token</button></form>`}
</div><p class="secret" data-secret hidden></p>` : ''}
<div class="table-wrap"><table><thead><tr><th scope="col">Token</th><th scope="col">Prefix</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${tokens.length ? tokens.map((t) => html`<tr><td>${t.name}</td><td><code>silo_op_${t.prefix}</code></td><td>${when(t.expiresAt)}</td><td>${when(t.lastUsedAt)}</td><td>${tokenState(t, now)}</td>
<td>${write && !t.revokedAt ? html`<form data-api="/v1/operators/${op.id}/tokens/${t.id}" data-method="DELETE" data-confirm="Revoke token ${t.name}? Sessions signed in with it end."><button type="submit">Revoke</button></form>` : ''}</td></tr>`) : html`<tr><td colspan="6">No tokens.</td></tr>`}</tbody></table></div></section>`);
  return layout('Operators', html`<h1>Operators</h1>
${write ? html`<section class="card" aria-labelledby="new-h"><h2 id="new-h">New operator</h2><form class="actions" data-api="/v1/operators" data-method="POST"><label>Email <input name="email" type="email" required></label><label>Name <input name="name" required></label><label>Role ${roleSelect('viewer')}</label><button type="submit">Create</button></form></section>` : ''}
${rows}`, v, 'operators');
}

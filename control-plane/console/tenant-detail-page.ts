import type { ApiKey } from '../api-keys/api-key.entity';
import type { WebhookEvent } from '../billing/webhook-event.entity';
import type { JobRun } from '../jobs/job-run.entity';
import type { Job } from '../jobs/job.entity';
import type { AuditEntry } from '../tenants/audit-entry.entity';
import type { TenantConnection } from '../tenants/tenant-connection.entity';
import type { TenantSchemaVersion } from '../tenants/tenant-schema-version.entity';
import type { TenantStorage } from '../tenants/tenant-storage.entity';
import type { Tenant } from '../tenants/tenant.entity';
import { billingEventRows, billingEventsHead } from './billing-events-page';
import { Html, html } from './html';
import { statusBadge } from './tenant-pages';
import { layout, Viewer, when } from './views';

export interface TenantDetail {
  tenant: Tenant;
  connection: TenantConnection | null;
  schema: TenantSchemaVersion | null;
  jobs: Job[];
  history: AuditEntry[];
  /** null when the viewer may not read API keys. */
  keys: ApiKey[] | null;
  tiers: string[];
  /** The tenant's stored Stripe events (by tenant or by its subscription), newest first; null when the viewer may not read billing. */
  billing: WebhookEvent[] | null;
  /** The storage sweep's last measurement (null: never measured) and the tier's quota now. */
  storage: { row: TenantStorage | null; quotaBytes: number };
}

/** Bytes in binary units, one decimal (1536 → "1.5 KiB"). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

function usage(d: TenantDetail): Html {
  const r = d.storage.row;
  if (!r) return html`<dt>Storage</dt><dd data-usage="none">not measured yet <span class="muted">(quota ${formatBytes(d.storage.quotaBytes)}; the storage sweep measures active tenants)</span></dd>`;
  const pct = r.quotaBytes > 0 ? Math.round((r.usedBytes / r.quotaBytes) * 1000) / 10 : null;
  return html`<dt>Storage</dt><dd data-usage="measured">${formatBytes(r.usedBytes)} of ${formatBytes(r.quotaBytes)}${pct === null ? '' : html` (${pct}%)`} <span class="muted">measured ${when(r.measuredAt)}</span>${r.frozen ? html` <span class="error">writes frozen since ${when(r.frozenAt)}</span>` : ''}${r.lastError ? html` <span class="error">${r.lastError}</span>` : ''}</dd>`;
}

const actorOf = (a: AuditEntry) => (a.actorKind === 'operator' ? html`${a.actorEmail ?? a.actorOperatorId} <span class="muted">(${a.actorTokenPrefix})</span>` : html`${a.actorKind}`);

export function summary(d: TenantDetail): Html {
  const t = d.tenant;
  const c = d.connection;
  return html`<dl class="facts">
<dt>Status</dt><dd>${statusBadge(t.status)}${t.suspendReason ? html` <span class="muted">${t.suspendReason}</span>` : ''}${t.failureReason ? html` <span class="error">${t.failureReason}</span>` : ''}</dd>
<dt>Tier</dt><dd data-tier>${t.tier}</dd><dt>Region</dt><dd>${t.region}</dd>
<dt>Schema version</dt><dd>${d.schema ? html`${d.schema.version}${d.schema.drift ? html` <span class="error">drift</span>` : ''}${d.schema.lastError ? html` <span class="error">${d.schema.lastError}</span>` : ''}` : '—'}</dd>
<dt>Connection</dt><dd>${c ? html`<code>${c.username}@${c.host}:${c.port}/${c.database}</code> <span class="muted">(password not shown; rotated ${when(c.rotatedAt)})</span>` : '—'}</dd>
<dt>Billing</dt><dd>${t.stripeSubscriptionId ? html`<code>${t.stripeSubscriptionId}</code> ${t.billingStatus ?? ''}` : 'not billed through Stripe'}</dd>
${usage(d)}
<dt>Offboard at</dt><dd>${when(t.offboardAt)}</dd><dt>Created</dt><dd>${when(t.createdAt)}</dd></dl>`;
}

export function jobRows(jobs: Job[]): Html {
  if (!jobs.length) return html`<tr><td colspan="5">No jobs.</td></tr>`;
  return html`${jobs.map((j) => html`<tr data-job="${j.id}"><td><a href="/console/tenants/${j.tenantId ?? ''}/jobs/${j.id}">${j.type}</a></td><td>${statusBadge(j.status)}</td><td>${j.attempts}/${j.maxAttempts}</td><td>${when(j.createdAt)}</td><td>${j.lastError ? html`<span class="error">${j.lastError}</span>` : ''}</td></tr>`)}`;
}

export function historyItems(items: AuditEntry[]): Html {
  if (!items.length) return html`<li>No history.</li>`;
  return html`${items.map((a) => html`<li><span class="when">${when(a.createdAt)}</span> <strong>${a.action}</strong>${a.fromStatus || a.toStatus ? html` ${a.fromStatus ?? '∅'} → ${a.toStatus ?? '∅'}` : ''} <span class="actor">by ${actorOf(a)}</span></li>`)}`;
}

function actions(v: Viewer, d: TenantDetail): Html {
  const t = d.tenant;
  const base = `/v1/tenants/${t.id}`;
  const out: Html[] = [];
  if (v.can('tenants:lifecycle')) {
    if (t.status === 'active' || t.status === 'provisioning' || t.status === 'pending') {
      out.push(html`<form data-api="${base}/suspend" data-method="POST" data-confirm="Suspend ${t.slug}? Its API keys stop working at once."><label>Reason <input name="reason" maxlength="200"></label><button type="submit">Suspend</button></form>`);
    }
    if (t.status === 'suspended') out.push(html`<form data-api="${base}/resume" data-method="POST" data-confirm="Resume ${t.slug}?"><button type="submit">Resume</button></form>`);
    if (t.status !== 'deleted' && t.status !== 'deprovisioning') {
      out.push(html`<form data-api="${base}" data-method="PATCH" data-confirm="Change the tier of ${t.slug}?"><label>Tier <select name="tier">${d.tiers.map((n) => html`<option${n === t.tier ? html` selected` : ''}>${n}</option>`)}</select></label><button type="submit">Change tier</button></form>`);
      out.push(html`<form class="danger" data-api="${base}/offboard" data-method="POST" data-slug="${t.slug}"><input type="hidden" name="force" value="true" data-type="bool">
<label><span>Type <code>${t.slug}</code> to offboard (export, then delete its data)</span> <input name="confirm" data-skip autocomplete="off"></label><button type="submit" disabled>Offboard</button></form>`);
    }
  }
  if (v.can('tenants:rotate-credentials') && (t.status === 'active' || t.status === 'suspended')) {
    out.push(html`<form data-api="${base}/rotate-credentials" data-method="POST" data-confirm="Rotate the database password of ${t.slug}?"><button type="submit">Rotate credentials</button></form>`);
  }
  if (v.can('tenants:retry') && t.status === 'failed') out.push(html`<form data-api="${base}/retry" data-method="POST" data-confirm="Retry ${t.slug}?"><button type="submit">Retry</button></form>`);
  return out.length ? html`<section class="card" aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2><div class="actions">${out}</div></section>` : html``;
}

function keysSection(v: Viewer, d: TenantDetail): Html {
  if (!d.keys) return html``;
  const write = v.can('api-keys:write');
  const base = `/v1/tenants/${d.tenant.id}/api-keys`;
  const rows = d.keys.map((k) => html`<tr><td>${k.name}</td><td><code>${k.prefix}</code></td><td>${when(k.createdAt)}</td><td>${k.revokedAt ? html`revoked ${when(k.revokedAt)}` : k.expiresAt ? html`expires ${when(k.expiresAt)}` : 'active'}</td>
<td>${write && !k.revokedAt ? html`<form data-api="${base}/${k.id}" data-method="DELETE" data-confirm="Revoke key ${k.name}?"><button type="submit">Revoke</button></form>` : ''}</td></tr>`);
  return html`<section class="card" aria-labelledby="keys-h"><h2 id="keys-h">API keys</h2>
${write ? html`<form data-api="${base}" data-method="POST" data-show="key"><label>Name <input name="name" required maxlength="100"></label><button type="submit">Issue key</button></form><p class="secret" data-secret hidden></p>` : ''}
<div class="table-wrap"><table><thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="5">No keys.</td></tr>`}</tbody></table></div></section>`;
}

export function tenantPage(v: Viewer, d: TenantDetail): Html {
  const t = d.tenant;
  return layout(t.slug, html`<p><a href="/console/tenants">← Tenants</a></p><h1>${t.name} <span class="muted">${t.slug}</span></h1>
<div data-live="/console/live/tenants/${t.id}">
<section class="card" aria-labelledby="status-h"><h2 id="status-h">Status</h2><div data-fragment="summary">${summary(d)}</div></section>
${actions(v, d)}
<section class="card" aria-labelledby="jobs-h"><h2 id="jobs-h">Jobs</h2><div class="table-wrap"><table><thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Created</th><th scope="col">Last error</th></tr></thead><tbody data-fragment="jobs">${jobRows(d.jobs)}</tbody></table></div></section>
${keysSection(v, d)}
${d.billing ? html`<section class="card" aria-labelledby="billing-h"><h2 id="billing-h">Billing events</h2><div class="table-wrap"><table>${billingEventsHead(false)}<tbody>${billingEventRows(d.billing, { tenantColumn: false })}</tbody></table></div></section>` : ''}
<section class="card" aria-labelledby="history-h"><h2 id="history-h">History</h2><ol class="timeline" data-fragment="history">${historyItems(d.history)}</ol></section>
</div>`, v, 'tenants');
}

const outcomeText = (r: JobRun) => (r.outcome ?? (r.finishedAt ? 'ended' : 'running'));

/** One job of a tenant: its attempts (`job_runs`) and its log (`jobs.log`, the last 64 KiB). */
export function jobPage(v: Viewer, tenant: Tenant, job: Job, runs: JobRun[]): Html {
  return layout(`${job.type} · ${tenant.slug}`, html`<p><a href="/console/tenants/${tenant.id}">← ${tenant.slug}</a></p>
<h1>${job.type} <span class="muted">${tenant.slug}</span></h1>
<section class="card" aria-labelledby="job-h"><h2 id="job-h">Job</h2><dl class="facts">
<dt>Status</dt><dd>${statusBadge(job.status)}</dd><dt>Attempts</dt><dd>${job.attempts}/${job.maxAttempts}</dd>
<dt>Created</dt><dd>${when(job.createdAt)}</dd><dt>Run at</dt><dd>${when(job.runAt)}</dd><dt>Finished</dt><dd>${when(job.finishedAt)}</dd>
<dt>Last error</dt><dd>${job.lastError ? html`<span class="error">${job.lastError}</span>` : '—'}</dd><dt>Id</dt><dd><code>${job.id}</code></dd></dl></section>
<section class="card" aria-labelledby="runs-h"><h2 id="runs-h">Runs</h2><div class="table-wrap"><table><thead><tr><th scope="col">Run</th><th scope="col">Worker</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Outcome</th><th scope="col">Error</th></tr></thead>
<tbody>${runs.length ? runs.map((r) => html`<tr data-run="${r.attempt}"><td>${r.attempt}</td><td><code>${r.workerId}</code></td><td>${when(r.startedAt)}</td><td>${when(r.finishedAt)}</td><td>${statusBadge(outcomeText(r))}</td><td>${r.error ? html`<span class="error">${r.error}</span>` : ''}</td></tr>`) : html`<tr><td colspan="6">Not run yet.</td></tr>`}</tbody></table></div></section>
<section class="card" aria-labelledby="log-h"><h2 id="log-h">Log</h2>${job.log ? html`<pre class="log" tabindex="0" aria-label="Job log">${job.log}</pre>` : html`<p>No log lines.</p>`}</section>`, v, 'tenants');
}

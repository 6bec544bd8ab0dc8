import type { ApiKey } from '../api-keys/api-key.entity';
import type { Job } from '../jobs/job.entity';
import type { AuditEntry } from '../tenants/audit-entry.entity';
import type { TenantConnection } from '../tenants/tenant-connection.entity';
import type { TenantSchemaVersion } from '../tenants/tenant-schema-version.entity';
import type { Tenant } from '../tenants/tenant.entity';
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
<dt>Offboard at</dt><dd>${when(t.offboardAt)}</dd><dt>Created</dt><dd>${when(t.createdAt)}</dd></dl>`;
}

export function jobRows(jobs: Job[]): Html {
  if (!jobs.length) return html`<tr><td colspan="5">No jobs.</td></tr>`;
  return html`${jobs.map((j) => html`<tr><td>${j.type}</td><td>${statusBadge(j.status)}</td><td>${j.attempts}/${j.maxAttempts}</td><td>${when(j.createdAt)}</td><td>${j.lastError ? html`<span class="error">${j.lastError}</span>` : ''}</td></tr>`)}`;
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
<section class="card" aria-labelledby="history-h"><h2 id="history-h">History</h2><ol class="timeline" data-fragment="history">${historyItems(d.history)}</ol></section>
</div>`, v, 'tenants');
}

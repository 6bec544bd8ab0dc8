import type { FleetStatus, SchemaState, TenantSchemaStatus } from '../../migrations/migration-status';
import { Html, html } from './html';
import { statusBadge } from './tenant-pages';
import { layout, Viewer, when } from './views';

/** Every state `mirrorStatus` gives a tenant, in the order the page lists them. */
export const SCHEMA_STATES: readonly SchemaState[] = ['behind', 'failed', 'drift', 'unknown', 'up-to-date', 'not-eligible', 'unreachable'];

export interface MigrationsQuery {
  state: string;
  tier: string;
  q: string;
  page: number;
  pageSize: number;
}

/** The tenants of `status` the filters keep, in the mirror's order (creation order). */
export function filterSchemaRows(status: FleetStatus, q: MigrationsQuery): TenantSchemaStatus[] {
  const needle = q.q.toLowerCase();
  return status.tenants.filter((t) => (!q.state || t.state === q.state) && (!q.tier || t.tier === q.tier) && (!needle || t.slug.includes(needle)));
}

const stateBadge = (s: SchemaState) => html`<span class="badge m-${s}" data-state>${s}</span>`;

function href(q: MigrationsQuery, patch: Partial<MigrationsQuery>): string {
  const m = { ...q, ...patch };
  const p = new URLSearchParams();
  if (m.q) p.set('q', m.q);
  if (m.state) p.set('state', m.state);
  if (m.tier) p.set('tier', m.tier);
  if (m.page > 1) p.set('page', String(m.page));
  const s = p.toString();
  return `/console/migrations${s ? `?${s}` : ''}`;
}

/** The schema states as counts, each a link to the page filtered by it (also on the fleet page). */
export function schemaCounts(status: FleetStatus, q: MigrationsQuery | null = null): Html {
  const base: MigrationsQuery = q ?? { state: '', tier: '', q: '', page: 1, pageSize: 50 };
  return html`<div class="stats" aria-label="Tenants by schema version"><div class="stat"><span class="big" data-stat="latest">${status.latest ?? 'none'}</span> latest version (${status.files} file${status.files === 1 ? '' : 's'})</div>
${SCHEMA_STATES.filter((s) => status.counts[s] || s === 'behind' || s === 'failed').map((s) => html`<div class="stat"><a href="${href(base, { state: s, page: 1 })}"><span class="big${(s === 'failed' || s === 'drift') && status.counts[s] ? ' error' : ''}" data-stat="schema-${s}">${status.counts[s]}</span> ${s}</a></div>`)}</div>`;
}

function rows(items: TenantSchemaStatus[]): Html {
  if (!items.length) return html`<tr><td colspan="7">No tenants match.</td></tr>`;
  return html`${items.map((t) => html`<tr data-slug="${t.slug}"><td><a href="/console/tenants/${t.tenantId}">${t.slug}</a></td><td>${statusBadge(t.status)}</td><td>${t.tier}</td>
<td>${t.version ?? '—'}</td><td>${t.pending ?? '—'}</td><td>${stateBadge(t.state)}</td>
<td>${t.lastError ? html`<span class="error">${t.lastError}</span> ` : ''}${t.drift ? html`<span class="error">${t.drift}</span> ` : ''}${t.note ? html`<span class="muted">${t.note}</span>` : ''} <span class="when">${t.updatedAt ? html`mirrored ${when(t.updatedAt)}` : ''}</span></td></tr>`)}`;
}

/** Fleet migrations: each tenant's version from the control database's mirror, drift (tenants behind the latest file), failures. */
export function migrationsPage(v: Viewer, status: FleetStatus | { error: string }, q: MigrationsQuery, tiers: string[]): Html {
  if ('error' in status) {
    return layout('Migrations', html`<h1>Migrations</h1><section class="card"><p class="error" role="alert">The tenant migrations could not be read: ${status.error}</p></section>`, v, 'migrations');
  }
  const matched = filterSchemaRows(status, q);
  const pages = Math.max(1, Math.ceil(matched.length / q.pageSize));
  const page = Math.min(q.page, pages);
  const shown = matched.slice((page - 1) * q.pageSize, page * q.pageSize);
  const first = matched.length ? (page - 1) * q.pageSize + 1 : 0;
  const opt = (value: string, current: string, label = value) => html`<option value="${value}"${value === current ? html` selected` : ''}>${label}</option>`;
  return layout('Migrations', html`<h1>Migrations</h1>
<p class="muted">From the control database's mirror of each tenant's ledger (<code>tenant_schema_versions</code>), as <code>silo migrate status</code> shows it without <code>--check</code>: no tenant database is contacted. Deleted tenants are left out.</p>
${schemaCounts(status, q)}
<form class="filters" method="get" action="/console/migrations" role="search">
<label>Search <input type="search" name="q" value="${q.q}" placeholder="slug"></label>
<label>State <select name="state">${opt('', q.state, 'any')}${SCHEMA_STATES.map((s) => opt(s, q.state))}</select></label>
<label>Tier <select name="tier">${opt('', q.tier, 'any')}${tiers.map((s) => opt(s, q.tier))}</select></label>
<button type="submit">Filter</button></form>
<div class="table-wrap"><table class="migrations"><caption class="sr-only">Tenant schema versions</caption>
<thead><tr><th scope="col">Slug</th><th scope="col">Status</th><th scope="col">Tier</th><th scope="col">Version</th><th scope="col">Pending</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>${rows(shown)}</tbody></table></div>
<nav class="pager" aria-label="Pages"><span data-range>${first}–${first ? first + shown.length - 1 : 0} of ${matched.length}</span>
${page > 1 ? html`<a rel="prev" href="${href(q, { page: page - 1 })}">Previous</a>` : ''}<span>Page ${page} of ${pages}</span>
${page < pages ? html`<a rel="next" href="${href(q, { page: page + 1 })}">Next</a>` : ''}</nav>`, v, 'migrations');
}

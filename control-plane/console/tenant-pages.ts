import type { TenantPageRow } from '../../common/control-db/tenant-queries';
import { Html, html } from './html';
import { layout, Viewer, when } from './views';

export interface TenantsQuery {
  q: string;
  status: string;
  tier: string;
  page: number;
  pageSize: number;
}

export const statusBadge = (s: string) => html`<span class="badge s-${s}" data-status>${s}</span>`;

export function tenantRows(rows: TenantPageRow[]): Html {
  if (!rows.length) return html`<tr><td colspan="5">No tenants match.</td></tr>`;
  return html`${rows.map((t) => html`<tr data-slug="${t.slug}"><td><a href="/console/tenants/${t.id}">${t.slug}</a></td><td>${t.name}</td><td>${statusBadge(t.status)}</td><td>${t.tier}</td><td>${when(t.created_at)}</td></tr>`)}`;
}

function pageHref(q: TenantsQuery, page: number): string {
  const p = new URLSearchParams();
  if (q.q) p.set('q', q.q);
  if (q.status) p.set('status', q.status);
  if (q.tier) p.set('tier', q.tier);
  if (page > 1) p.set('page', String(page));
  const s = p.toString();
  return `/console/tenants${s ? `?${s}` : ''}`;
}

export function pager(q: TenantsQuery, total: number): Html {
  const pages = Math.max(1, Math.ceil(total / q.pageSize));
  const first = total ? (q.page - 1) * q.pageSize + 1 : 0;
  const last = Math.min(total, q.page * q.pageSize);
  return html`<nav class="pager" aria-label="Pages"><span data-range>${first}–${last} of ${total}</span>
${q.page > 1 ? html`<a rel="prev" href="${pageHref(q, q.page - 1)}">Previous</a>` : ''}
<span>Page ${q.page} of ${pages}</span>
${q.page < pages ? html`<a rel="next" href="${pageHref(q, q.page + 1)}">Next</a>` : ''}</nav>`;
}

export function tenantsPage(viewer: Viewer, q: TenantsQuery, rows: TenantPageRow[], total: number, statuses: string[], tiers: string[]): Html {
  const opt = (value: string, current: string, label = value) => html`<option value="${value}"${value === current ? html` selected` : ''}>${label}</option>`;
  const live = new URLSearchParams({ q: q.q, status: q.status, tier: q.tier, page: String(q.page) }).toString();
  return layout('Tenants', html`<h1>Tenants</h1>
<form class="filters" method="get" action="/console/tenants" role="search">
<label>Search <input type="search" name="q" value="${q.q}" placeholder="slug or name"></label>
<label>Status <select name="status">${opt('', q.status, 'any')}${statuses.map((s) => opt(s, q.status))}</select></label>
<label>Tier <select name="tier">${opt('', q.tier, 'any')}${tiers.map((s) => opt(s, q.tier))}</select></label>
<button type="submit">Filter</button></form>
<div class="table-wrap"><table class="tenants"><caption class="sr-only">Tenants</caption>
<thead><tr><th scope="col">Slug</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Tier</th><th scope="col">Created</th></tr></thead>
<tbody data-live="/console/live/tenants?${live}" data-fragment="rows">${tenantRows(rows)}</tbody></table></div>
${pager(q, total)}`, viewer, 'tenants');
}

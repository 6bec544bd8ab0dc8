import { ROLES } from '../common/permissions';
import type { OperatorToken } from '../operators/operator-token.entity';
import type { Operator } from '../operators/operator.entity';
import { Html, html } from './html';
import { statusBadge } from './tenant-pages';
import { layout, Viewer, when } from './views';

export interface FleetFigures {
  tenants: Array<{ status: string; tier: string; n: number }>;
  /** null when the viewer's role may not read operations (the job queue). */
  jobs: { byStatus: Array<{ type: string; status: string; n: number }>; failedLastDay: number } | null;
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
<tbody>${jobs.byStatus.length ? jobs.byStatus.map((r) => html`<tr><td>${r.type}</td><td>${statusBadge(r.status)}</td><td>${r.n}</td></tr>`) : html`<tr><td colspan="3">Nothing queued, running or failed in the last day.</td></tr>`}</tbody></table></div></section>` : ''}`;
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

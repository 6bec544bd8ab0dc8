import type { WebhookEvent } from '../billing/webhook-event.entity';
import { Html, html } from './html';
import { layout, Viewer, when } from './views';

export interface BillingEventsQuery {
  outcome: string;
  type: string;
}

/** Outcomes that did nothing to a tenant and are worth a look: `ignored` (a type, mode or shape with no effect). */
export const FAILURE_OUTCOMES = ['ignored'];

const outcomeBadge = (o: string) => html`<span class="badge o-${o}" data-outcome>${o}</span>`;

/** Stored Stripe events as table rows (the list page and the tenant page). */
export function billingEventRows(events: WebhookEvent[], opts: { tenantColumn: boolean }): Html {
  const cols = opts.tenantColumn ? 6 : 5;
  if (!events.length) return html`<tr><td colspan="${cols}">No billing events.</td></tr>`;
  return html`${events.map((e) => html`<tr data-event="${e.id}"><td>${when(e.receivedAt)}</td><td>${e.type}</td><td>${outcomeBadge(e.outcome)}</td><td>${e.source}</td>
<td><code>${e.subscriptionId ?? '—'}</code></td>${opts.tenantColumn ? html`<td>${e.tenantId ? html`<a href="/console/tenants/${e.tenantId}">tenant</a>` : '—'}</td>` : ''}</tr>`)}`;
}

export function billingEventsHead(tenantColumn: boolean): Html {
  return html`<thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Outcome</th><th scope="col">Source</th><th scope="col">Subscription</th>${tenantColumn ? html`<th scope="col">Tenant</th>` : ''}</tr></thead>`;
}

/** `GET /console/billing-events`: the newest stored Stripe events (`GET /v1/webhook-events`'s list), filtered by outcome and type. */
export function billingEventsPage(v: Viewer, q: BillingEventsQuery, events: WebhookEvent[], outcomes: string[], limit: number): Html {
  const opt = (value: string, current: string, label = value) => html`<option value="${value}"${value === current ? html` selected` : ''}>${label}</option>`;
  return layout('Billing events', html`<h1>Billing events</h1>
<p class="muted">Stripe events as stored (<code>webhook_events</code>), newest first, at most ${limit}. A delivery refused before it was stored (bad signature, a body that is not an event, or an error that rolled its transaction back and made Stripe retry) is not here: see the control plane's log.</p>
<form class="filters" method="get" action="/console/billing-events" role="search">
<label>Outcome <select name="outcome">${opt('', q.outcome, 'any')}${outcomes.map((o) => opt(o, q.outcome))}</select></label>
<label>Type <input name="type" value="${q.type}" placeholder="invoice.paid" maxlength="100"></label>
<button type="submit">Filter</button></form>
<div class="table-wrap"><table><caption class="sr-only">Billing events</caption>${billingEventsHead(true)}
<tbody>${billingEventRows(events, { tenantColumn: true })}</tbody></table></div>`, v, 'billing');
}

import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nowSeconds, StripeObject, subscriptionObject, SubscriptionState } from './stripe-fixtures';

export const FAKE_STRIPE_KEY = 'sk_test_silo_fake_stripe_api_key_0123456789';

export interface FakeStripeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorized: boolean;
}

/**
 * The few Stripe API endpoints the billing reconciler calls, on 127.0.0.1, answered from
 * SubscriptionStates with the fixtures' real-shaped objects:
 * `GET /v1/subscriptions` (status filter, `limit`, `starting_after`, `has_more`, `expand[]=data.customer`)
 * and `GET /v1/subscriptions/:id` (`expand[]=customer`, 404 `resource_missing` like Stripe).
 * Requests without `Authorization: Bearer <key>` get Stripe's 401. Point the real `stripe` client at
 * it with `host`/`port`/`protocol` (STRIPE_API_BASE_URL=`url`).
 */
export class FakeStripeApi {
  readonly subscriptions = new Map<string, SubscriptionState>();
  /** Fields laid over a subscription's object (e.g. `cancel_at`), by subscription id. */
  readonly overrides = new Map<string, StripeObject>();
  readonly requests: FakeStripeRequest[] = [];
  /** Answer every request with this HTTP status and Stripe error (e.g. 500 api_error), until cleared. */
  failWith: { status: number; type: string; message: string } | null = null;
  private server: Server | null = null;
  url = '';

  constructor(readonly key = FAKE_STRIPE_KEY) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Adds or replaces a subscription (what Stripe knows, whatever webhooks said). */
  put(s: SubscriptionState): SubscriptionState {
    this.subscriptions.set(s.subscriptionId, s);
    return s;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://fake');
    const authorized = req.headers.authorization === `Bearer ${this.key}`;
    this.requests.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams, authorized });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${this.requests.length}` });
      res.end(JSON.stringify(body));
    };
    const error = (status: number, type: string, message: string, code?: string) => send(status, { error: { type, message, ...(code ? { code } : {}) } });
    if (!authorized) return error(401, 'invalid_request_error', `Invalid API Key provided: ${maskKey(req.headers.authorization)}`);
    if (this.failWith) return error(this.failWith.status, this.failWith.type, this.failWith.message);
    if (req.method !== 'GET') return error(405, 'invalid_request_error', 'only GET is faked');

    const expand = [...u.searchParams.entries()].filter(([k]) => k === 'expand[]' || /^expand\[\d*\]$/.test(k)).map(([, v]) => v);
    if (u.pathname === '/v1/subscriptions') {
      const status = u.searchParams.get('status');
      const limit = Math.min(100, Math.max(1, Number(u.searchParams.get('limit') ?? 10)));
      const after = u.searchParams.get('starting_after');
      // Stripe lists newest first, without canceled ones unless asked (status=canceled or all).
      let all = [...this.subscriptions.values()].sort((a, b) => b.startedAt - a.startedAt || (a.subscriptionId < b.subscriptionId ? 1 : -1));
      if (status !== 'all') all = all.filter((s) => (status ? s.status === status : s.status !== 'canceled' && s.status !== 'incomplete_expired'));
      const start = after ? all.findIndex((s) => s.subscriptionId === after) + 1 : 0;
      const page = all.slice(start, start + limit);
      return send(200, {
        object: 'list', url: '/v1/subscriptions', has_more: start + limit < all.length,
        data: page.map((s) => this.object(s, expand.includes('data.customer'))),
      });
    }
    const one = /^\/v1\/subscriptions\/([^/]+)$/.exec(u.pathname);
    if (one) {
      const s = this.subscriptions.get(decodeURIComponent(one[1]));
      if (!s) return error(404, 'invalid_request_error', `No such subscription: '${one[1]}'`, 'resource_missing');
      return send(200, this.object(s, expand.includes('customer')));
    }
    return error(404, 'invalid_request_error', `Unrecognized request URL (GET: ${u.pathname}).`);
  }

  private object(s: SubscriptionState, expandCustomer: boolean): StripeObject {
    const o = { ...subscriptionObject(s, nowSeconds()), ...this.overrides.get(s.subscriptionId) };
    if (!expandCustomer) return o;
    return {
      ...o,
      customer: { id: s.customerId, object: 'customer', created: s.startedAt, email: s.customerEmail, name: s.customerName, metadata: {}, livemode: false },
    };
  }
}

function maskKey(header: string | undefined): string {
  const key = (header ?? '').replace(/^Bearer\s+/i, '');
  return key.length > 8 ? `${key.slice(0, 8)}${'*'.repeat(8)}${key.slice(-4)}` : '(none)';
}

export async function startFakeStripeApi(key?: string): Promise<FakeStripeApi> {
  return new FakeStripeApi(key).start();
}

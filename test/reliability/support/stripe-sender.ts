import { Agent } from 'node:http';
import type { StripeEventFixture } from '../../support/stripe-fixtures';
import { signatureFor } from '../../support/stripe';
import { httpCall } from './load';
import { sleep } from './processes';
import { WEBHOOK_SECRET } from './stack';

export interface DeliveryLog {
  eventId: string;
  /** Attempts until a 200 (1: first try). */
  attempts: number;
  /** Attempts that failed: connection refused/reset (server down) or a 5xx. */
  failures: number;
  delivered: boolean;
  lastError: string | null;
}

/**
 * Delivers one event the way Stripe does: signed afresh on every attempt, retried with backoff
 * until a 2xx (at-least-once), here bounded by `deadline`. A 4xx is not retried (Stripe would,
 * but for our signed, well-formed events it would mean a bug): it is returned as undelivered.
 */
export async function deliverLikeStripe(url: () => string, event: StripeEventFixture, deadline: number, agent?: Agent): Promise<DeliveryLog> {
  const payload = JSON.stringify(event);
  const log: DeliveryLog = { eventId: event.id, attempts: 0, failures: 0, delivered: false, lastError: null };
  for (let backoff = 150; Date.now() < deadline; backoff = Math.min(backoff * 2, 2_000)) {
    log.attempts++;
    const res = await httpCall(url(), '/webhooks/stripe', {
      rawBody: payload,
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signatureFor(payload, { secret: WEBHOOK_SECRET }) },
      agent,
      timeoutMs: 10_000,
    });
    if (res.status === 200) {
      log.delivered = true;
      return log;
    }
    log.failures++;
    log.lastError = `${res.status} ${res.code}: ${res.text.slice(0, 200)}`;
    if (res.status >= 400 && res.status < 500) return log;
    await sleep(backoff);
  }
  return log;
}

import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { DATA_SOURCE } from '../common/tokens';
import { PipelinedTx, pipelinedTransaction, send, write } from '../db/pipelined-transaction';
import type { SignedPayload } from './stripe-webhook.verifier';
import { WebhookEvent, WebhookSource } from './webhook-event.entity';

export interface WebhookEventRecord {
  id: string;
  type: string;
  /** The verified delivery: the signed bytes and header are stored as they came, the jsonb-safe document as jsonb. */
  payload: SignedPayload;
  /** Stripe's `created`, unix seconds. */
  created: number;
  subscriptionId: string | null;
  tenantId: string | null;
  outcome: string;
}

export interface WebhookEventFilter {
  limit: number;
  subscriptionId?: string;
  tenantId?: string;
  type?: string;
  outcome?: string;
}

/** Arbitrary seed: keeps subscription lock keys apart from other advisory locks on the control DB. */
const SUBSCRIPTION_LOCK_SEED = 7_301_120_002;

/** The only code touching webhook_events. Hot-path statements are plain SQL: one round trip each. */
@Injectable()
export class WebhookEventRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  /** A transaction whose statements share round trips (see pipelinedTransaction): the webhook path. */
  pipelined<T>(fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
    return pipelinedTransaction(this.ds, fn);
  }

  /**
   * Inserts the event unless its id is already stored; returns false for a duplicate. A concurrent
   * insert of the same id waits for the other transaction and then reports the duplicate.
   */
  async insert(rec: WebhookEventRecord, m: EntityManager = this.ds.manager): Promise<boolean> {
    const rows: unknown[] = await m.query(
      `INSERT INTO webhook_events (id, type, payload, stripe_created_at, subscription_id, tenant_id, outcome, processed_at, raw_body, signature, source)
       VALUES ($1, $2, $3::jsonb, to_timestamp($4), $5, $6, $7, now(), $8::bytea, $9::text, $10::text)
       ON CONFLICT (id) DO NOTHING RETURNING 1`,
      params(rec),
    );
    return rows.length > 0;
  }

  /**
   * `insert` for an event of a subscription, in one round trip with the subscription lock: the
   * advisory lock (held to the end of the transaction) serialises every event of one subscription.
   * An advisory lock rather than a row lock because the tenant row may not exist yet (checkout and
   * subscription.created racing). Taken before the row is inserted, so a concurrent delivery of the
   * same id waits here and then finds it stored.
   */
  async insertLocked(rec: WebhookEventRecord & { subscriptionId: string }, m: EntityManager): Promise<boolean> {
    const rows: unknown[] = await send(
      m,
      `INSERT INTO webhook_events (id, type, payload, stripe_created_at, subscription_id, tenant_id, outcome, processed_at, raw_body, signature, source)
       SELECT $1, $2, $3::jsonb, to_timestamp($4), $5, $6, $7, now(), $8::bytea, $9::text, $10::text
       FROM (SELECT pg_advisory_xact_lock(hashtextextended($5, ${SUBSCRIPTION_LOCK_SEED}))) AS subscription_lock
       ON CONFLICT (id) DO NOTHING RETURNING 1`,
      params(rec),
    );
    return rows.length > 0;
  }

  /**
   * Payloads of a subscription's stored events that bear on billing (not `ignored`), in `created` order,
   * then arrival order: the history a late event is replayed into. The jsonb copies, which are exactly
   * what the live path read (the verifier hands billing the same replaced document).
   */
  async historyOf(subscriptionId: string, m: EntityManager): Promise<unknown[]> {
    const rows: Array<{ payload: unknown }> = await m.query(
      `SELECT payload FROM webhook_events WHERE subscription_id = $1 AND outcome <> 'ignored' ORDER BY stripe_created_at, received_at, id`,
      [subscriptionId],
    );
    return rows.map((r) => r.payload);
  }

  async setOutcome(id: string, outcome: string, tenantId: string | null, m: EntityManager): Promise<void> {
    await write(m, 'UPDATE webhook_events SET outcome = $2, tenant_id = $3, processed_at = now() WHERE id = $1', [id, outcome, tenantId]);
  }

  /** Newest first, without payloads. */
  recent(f: WebhookEventFilter): Promise<WebhookEvent[]> {
    const qb = this.ds.getRepository(WebhookEvent).createQueryBuilder('e')
      .select(['e.id', 'e.type', 'e.stripeCreatedAt', 'e.subscriptionId', 'e.tenantId', 'e.outcome', 'e.source', 'e.receivedAt', 'e.processedAt']);
    if (f.subscriptionId) qb.andWhere('e.subscription_id = :s', { s: f.subscriptionId });
    if (f.tenantId) qb.andWhere('e.tenant_id = :t', { t: f.tenantId });
    if (f.type) qb.andWhere('e.type = :type', { type: f.type });
    if (f.outcome) qb.andWhere('e.outcome = :outcome', { outcome: f.outcome });
    return qb.orderBy('e.received_at', 'DESC').addOrderBy('e.id', 'DESC').limit(f.limit).getMany();
  }

  /** Stored events per outcome received since `since` (the console's fleet page). Read-only; no index on received_at: a scan of the table. */
  outcomeCounts(since: Date): Promise<Array<{ outcome: string; n: number }>> {
    return this.ds.query('SELECT outcome, count(*)::int AS n FROM webhook_events WHERE received_at >= $1 GROUP BY outcome ORDER BY outcome', [since]);
  }

  findById(id: string): Promise<WebhookEvent | null> {
    return this.ds.getRepository(WebhookEvent).findOneBy({ id });
  }

  /** The stored signed bytes and header of an event (null: no such event; fields null: stored before they were kept). */
  async findSigned(id: string): Promise<{ body: Buffer | null; signature: string | null } | null> {
    const rows: Array<{ raw_body: Buffer | null; signature: string | null }> = await this.ds.query('SELECT raw_body, signature FROM webhook_events WHERE id = $1', [id]);
    return rows[0] ? { body: rows[0].raw_body, signature: rows[0].signature } : null;
  }
}

function params(rec: WebhookEventRecord): unknown[] {
  return [rec.id, rec.type, rec.payload.document, rec.created, rec.subscriptionId, rec.tenantId, rec.outcome, rec.payload.body, rec.payload.signature || null, rec.payload.source ?? WebhookSource.Stripe];
}

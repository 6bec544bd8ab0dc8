import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '../common/tokens';
import { PeriodicTask } from './periodic-task.entity';

export interface PeriodicClaim {
  name: string;
  run: number;
  /** The claim's time on the database clock. */
  startedAt: Date;
}

/** `interval_ms` is a 32-bit integer column: the longest interval it holds (about 24.8 days). */
export const MAX_PERIODIC_INTERVAL_MS = 2_147_483_647;
// Arbitrary seed: keeps the periodic tasks' lock keys apart from the control DB's other advisory locks.
const RUN_LOCK_SEED = 7_301_120_002;

/**
 * The schedule of fleet-wide periodic tasks. A claim moves `next_run_at` one interval past now
 * in one UPDATE guarded by `next_run_at <= now()`: replicas that race serialise on the row and
 * only the first finds the task due, so a task runs once per interval across the fleet. A worker
 * that dies mid-run costs that run only: the next one is already scheduled.
 *
 * A run that lasts longer than its interval must not overlap the next one on another replica:
 * the runner holds the task's run lock ({@link tryLock}, a session advisory lock on this
 * repository's own connection) from before the claim until the run is recorded. A replica whose
 * process dies loses its connection and with it the lock.
 */
@Injectable()
export class PeriodicTaskRepository implements OnApplicationShutdown {
  private lockSession: Promise<Client> | null = null;
  /** One query at a time on the lock connection (several task lanes share it). */
  private sessionQueue: Promise<unknown> = Promise.resolve();

  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  /** Takes task `name`'s run lock for this process; false while another replica's run holds it. */
  async tryLock(name: string): Promise<boolean> {
    const rows = await this.onSession<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, $2)) AS locked', [`periodic:${name}`, RUN_LOCK_SEED]);
    return rows[0]?.locked === true;
  }

  /** Gives task `name`'s run lock back (a no-op if the lock's connection is gone: so is the lock). */
  async unlock(name: string): Promise<void> {
    if (!this.lockSession) return;
    await this.onSession('SELECT pg_advisory_unlock(hashtextextended($1, $2))', [`periodic:${name}`, RUN_LOCK_SEED]);
  }

  /** Closes the lock connection (every run lock this process holds goes with it). */
  async close(): Promise<void> {
    const session = this.lockSession;
    this.lockSession = null;
    await session?.then((c) => c.end()).catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private onSession<T extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<T[]> {
    const next = this.sessionQueue.catch(() => undefined).then(async () => (await (await this.session()).query<T>(sql, params)).rows);
    this.sessionQueue = next;
    return next;
  }

  private session(): Promise<Client> {
    if (!this.lockSession) {
      const c = new Client({ connectionString: (this.ds.options as { url: string }).url, application_name: 'silo-periodic-locks' });
      const opened = c.connect().then(() => c);
      const forget = () => {
        if (this.lockSession === opened) this.lockSession = null;
      };
      c.on('error', forget);
      c.on('end', forget);
      opened.catch(forget);
      this.lockSession = opened;
    }
    return this.lockSession;
  }

  /**
   * Claims `name` if it is due. A task seen for the first time is due after `firstDelayMs`.
   * A shorter interval than the stored one applies at once (the last start + the new interval).
   */
  async claimDue(name: string, intervalMs: number, workerId: string, firstDelayMs = 0): Promise<PeriodicClaim | null> {
    if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > MAX_PERIODIC_INTERVAL_MS) {
      throw new RangeError(`periodic task ${name}: interval ${intervalMs} ms is outside 1..${MAX_PERIODIC_INTERVAL_MS} ms`);
    }
    await this.ds.query(
      `INSERT INTO periodic_tasks (name, interval_ms, next_run_at) VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000)) ON CONFLICT (name) DO NOTHING`,
      [name, intervalMs, firstDelayMs],
    );
    const rows: Array<{ run: string; started_at: Date }> = await this.ds.query(
      `WITH claimed AS (UPDATE periodic_tasks SET next_run_at = now() + make_interval(secs => $2::double precision / 1000), interval_ms = $2, run_count = run_count + 1,
              last_worker = $3, last_started_at = now()
        WHERE name = $1 AND (next_run_at <= now() OR (last_started_at IS NOT NULL AND last_started_at + make_interval(secs => $2::double precision / 1000) <= now()))
       RETURNING run_count::text AS run, last_started_at AS started_at) SELECT * FROM claimed`,
      [name, intervalMs, workerId],
    );
    const row = rows[0];
    return row ? { name, run: Number(row.run), startedAt: row.started_at } : null;
  }

  /** Records how run `claim.run` ended (a later run's record is never overwritten by an older one). */
  async finish(claim: PeriodicClaim, outcome: 'ok' | 'failed', detail: { error?: string; result?: unknown } = {}): Promise<void> {
    await this.ds.query(
      `UPDATE periodic_tasks SET last_finished_at = now(), last_outcome = $3, last_error = $4, last_result = $5 WHERE name = $1 AND run_count = $2`,
      [claim.name, claim.run, outcome, detail.error?.slice(0, 2000) ?? null, detail.result === undefined ? null : JSON.stringify(detail.result)],
    );
  }

  list(): Promise<PeriodicTask[]> {
    return this.ds.getRepository(PeriodicTask).find({ order: { name: 'ASC' } });
  }
}

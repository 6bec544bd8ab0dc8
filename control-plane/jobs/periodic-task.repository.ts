import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '../common/tokens';
import { PeriodicTask } from './periodic-task.entity';

export interface PeriodicClaim {
  name: string;
  run: number;
  /** The claim's time on the database clock. */
  startedAt: Date;
}

/**
 * The schedule of fleet-wide periodic tasks. A claim moves `next_run_at` one interval past now
 * in one UPDATE guarded by `next_run_at <= now()`: replicas that race serialise on the row and
 * only the first finds the task due, so a task runs once per interval across the fleet. A worker
 * that dies mid-run costs that run only: the next one is already scheduled.
 */
@Injectable()
export class PeriodicTaskRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  /**
   * Claims `name` if it is due. A task seen for the first time is due after `firstDelayMs`.
   * A shorter interval than the stored one applies at once (the last start + the new interval).
   */
  async claimDue(name: string, intervalMs: number, workerId: string, firstDelayMs = 0): Promise<PeriodicClaim | null> {
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

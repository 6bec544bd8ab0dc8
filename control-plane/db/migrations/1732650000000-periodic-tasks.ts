import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fleet-wide periodic work (lifecycle sweep, reconciler, storage sweep) runs once per period
 * whatever the number of workers (issue #14): the worker that moves a task's `next_run_at` forward
 * runs it; the others see it not due. Each task's last run is kept for the admin API.
 */
export class PeriodicTasks1732650000000 implements MigrationInterface {
  name = 'PeriodicTasks1732650000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE periodic_tasks (
        name text PRIMARY KEY,
        interval_ms integer NOT NULL CHECK (interval_ms > 0),
        next_run_at timestamptz NOT NULL,
        run_count bigint NOT NULL DEFAULT 0,
        last_worker text,
        last_started_at timestamptz,
        last_finished_at timestamptz,
        last_outcome text CHECK (last_outcome IN ('ok','failed')),
        last_error text,
        last_result jsonb
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS periodic_tasks`);
  }
}

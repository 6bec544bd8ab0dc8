import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * At most one running job per tenant, enforced by the database (issue #14): the claim query's
 * NOT EXISTS could not see another worker's uncommitted claim, so two workers woken by one NOTIFY
 * often claimed two jobs of one tenant. A partial unique index cannot be raced. And a record of
 * every attempt (who ran it, when it started and ended, how), for the admin API and for proving
 * that no two runs of one tenant ever overlapped.
 */
export class JobRuns1732640000000 implements MigrationInterface {
  name = 'JobRuns1732640000000';

  async up(q: QueryRunner): Promise<void> {
    // Installations that already hit the race: keep each tenant's newest lease running, requeue the rest.
    await q.query(`
      UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = now()
       WHERE status = 'running' AND tenant_id IS NOT NULL AND id NOT IN (
         SELECT DISTINCT ON (tenant_id) id FROM jobs WHERE status = 'running' AND tenant_id IS NOT NULL ORDER BY tenant_id, locked_until DESC NULLS LAST)`);
    await q.query(`CREATE UNIQUE INDEX jobs_one_running_per_tenant ON jobs (tenant_id) WHERE status = 'running'`);
    await q.query(`CREATE INDEX jobs_running_lease_idx ON jobs (locked_until) WHERE status = 'running'`);
    await q.query(`
      CREATE TABLE job_runs (
        job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        attempt integer NOT NULL,
        worker_id text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at timestamptz,
        outcome text CHECK (outcome IN ('succeeded','failed','retry','lost')),
        error text,
        PRIMARY KEY (job_id, attempt)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS job_runs`);
    await q.query(`DROP INDEX IF EXISTS jobs_running_lease_idx`);
    await q.query(`DROP INDEX IF EXISTS jobs_one_running_per_tenant`);
  }
}

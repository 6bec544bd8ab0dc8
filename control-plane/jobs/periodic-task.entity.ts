import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A fleet-wide periodic task and its last run. */
@Entity('periodic_tasks')
export class PeriodicTask {
  @PrimaryColumn('text') name!: string;
  @Column('integer', { name: 'interval_ms' }) intervalMs!: number;
  @Column('timestamptz', { name: 'next_run_at' }) nextRunAt!: Date;
  @Column('bigint', { name: 'run_count' }) runCount!: string;
  @Column('text', { name: 'last_worker', nullable: true }) lastWorker!: string | null;
  @Column('timestamptz', { name: 'last_started_at', nullable: true }) lastStartedAt!: Date | null;
  @Column('timestamptz', { name: 'last_finished_at', nullable: true }) lastFinishedAt!: Date | null;
  @Column('text', { name: 'last_outcome', nullable: true }) lastOutcome!: 'ok' | 'failed' | null;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  @Column('jsonb', { name: 'last_result', nullable: true }) lastResult!: unknown;
}

import { Column, Entity, PrimaryColumn } from 'typeorm';

export enum JobRunOutcome {
  Succeeded = 'succeeded',
  /** Failed for good (attempts used up). */
  Failed = 'failed',
  /** Failed; the job was queued again. */
  Retry = 'retry',
  /** Its worker stopped renewing the lease (crashed, killed, partitioned). */
  Lost = 'lost',
}

/** One attempt of a job: which worker ran it, when it started and ended, and how. */
@Entity('job_runs')
export class JobRun {
  @PrimaryColumn('uuid', { name: 'job_id' }) jobId!: string;
  @PrimaryColumn('integer') attempt!: number;
  @Column('text', { name: 'worker_id' }) workerId!: string;
  @Column('timestamptz', { name: 'started_at' }) startedAt!: Date;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @Column('text', { nullable: true }) outcome!: JobRunOutcome | null;
  @Column('text', { nullable: true }) error!: string | null;
}

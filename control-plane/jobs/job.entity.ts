import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export enum JobStatus {
  Queued = 'queued',
  Running = 'running',
  Succeeded = 'succeeded',
  Failed = 'failed',
  Cancelled = 'cancelled',
}

export enum JobType {
  Provision = 'provision',
  Deprovision = 'deprovision',
  RotateCredentials = 'rotate-credentials',
}

@Entity('jobs')
export class Job {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') type!: JobType;
  @Column('uuid', { name: 'tenant_id', nullable: true }) tenantId!: string | null;
  @Column('jsonb') payload!: Record<string, unknown>;
  @Column('text') status!: JobStatus;
  @Column('integer') attempts!: number;
  @Column('integer', { name: 'max_attempts' }) maxAttempts!: number;
  @Column('timestamptz', { name: 'run_at' }) runAt!: Date;
  @Column('text', { name: 'locked_by', nullable: true }) lockedBy!: string | null;
  @Column('timestamptz', { name: 'locked_until', nullable: true }) lockedUntil!: Date | null;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  @Column('text') log!: string;
  @Column('text', { name: 'dedupe_key', nullable: true }) dedupeKey!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
}

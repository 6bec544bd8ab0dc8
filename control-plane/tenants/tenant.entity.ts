import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn, VersionColumn } from 'typeorm';
import { FailedDuring, SlugSource, SuspendCause, SuspendedBy, TenantStatus } from './tenant-status';

@Entity('tenants')
export class Tenant {
  @PrimaryColumn('uuid') id!: string;
  @Column('varchar', { length: 63 }) slug!: string;
  @Column('text', { name: 'slug_source', nullable: true }) slugSource!: SlugSource | null;
  @Column('text') name!: string;
  @Column('text') status!: TenantStatus;
  @Column('text') tier!: string;
  @Column('text') region!: string;
  @Column('text', { name: 'stripe_customer_id', nullable: true }) stripeCustomerId!: string | null;
  @Column('text', { name: 'stripe_subscription_id', nullable: true }) stripeSubscriptionId!: string | null;
  /** Stripe's subscription status as last applied (active, past_due, unpaid, canceled, paused, ...). */
  @Column('text', { name: 'billing_status', nullable: true }) billingStatus!: string | null;
  @Column('timestamptz', { name: 'past_due_since', nullable: true }) pastDueSince!: Date | null;
  @Column('text', { name: 'suspend_reason', nullable: true }) suspendReason!: string | null;
  @Column('text', { name: 'suspended_by', nullable: true }) suspendedBy!: SuspendedBy | null;
  @Column('text', { name: 'suspend_cause', nullable: true }) suspendCause!: SuspendCause | null;
  @Column('timestamptz', { name: 'offboard_at', nullable: true }) offboardAt!: Date | null;
  /** `created` (unix seconds) of the newest Stripe event applied; older events never roll back. */
  @Column('bigint', { name: 'last_event_created', nullable: true, transformer: { to: (v) => v, from: (v) => (v == null ? null : Number(v)) } })
  lastEventCreated!: number | null;
  @Column('text', { name: 'failure_reason', nullable: true }) failureReason!: string | null;
  @Column('text', { name: 'failed_during', nullable: true }) failedDuring!: FailedDuring | null;
  @Column('text', { name: 'custom_domain', nullable: true }) customDomain!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
  @VersionColumn() version!: number;
  /** The version last written to the directory; behind `version` when a process died before writing it. */
  @Column('int', { name: 'published_version', nullable: true }) publishedVersion!: number | null;
}

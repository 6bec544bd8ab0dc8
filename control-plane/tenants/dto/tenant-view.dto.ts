import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ACTOR_KINDS } from '../../common/actor-context';
import { ApiDateTime } from '../../common/api-docs';
import { JobRunOutcome } from '../../jobs/job-run.entity';
import { JobStatus, JobType } from '../../jobs/job.entity';
import { FailedDuring, SuspendCause, SuspendedBy, TenantStatus } from '../tenant-status';

/** OpenAPI shapes of what tenants.controller.ts returns (tenant.view.ts and the controller's own maps). Documentation only: the handlers build the JSON. */

export class TenantStripeView {
  @ApiProperty({ nullable: true, type: String, example: 'cus_Q1w2e3r4' }) customerId!: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'sub_1QAbCdEfGhIjKlMn' }) subscriptionId!: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'active', description: "Stripe's subscription status as last applied" }) status!: string | null;
  @ApiDateTime({ nullable: true }) pastDueSince!: Date | null;
}

export class TenantSuspensionView {
  @ApiProperty({ enum: SuspendedBy }) by!: SuspendedBy;
  @ApiProperty({ enum: SuspendCause, nullable: true }) cause!: SuspendCause | null;
  @ApiProperty({ nullable: true, type: String }) reason!: string | null;
}

export class TenantConnectionView {
  @ApiProperty() host!: string;
  @ApiProperty() port!: number;
  @ApiProperty() database!: string;
  @ApiProperty() username!: string;
  @ApiProperty({ description: 'Where the password is kept (never the password)' }) secretRef!: string;
  @ApiProperty({ example: 'local' }) driver!: string;
  @ApiDateTime({ nullable: true }) rotatedAt!: Date | null;
}

export class TenantSchemaView {
  @ApiProperty({ nullable: true, type: String, description: 'Latest applied tenant migration' }) version!: string | null;
  @ApiProperty() appliedCount!: number;
  @ApiProperty({ nullable: true, type: String }) lastError!: string | null;
  @ApiProperty({ nullable: true, type: String }) drift!: string | null;
  @ApiDateTime() updatedAt!: Date;
}

export class TenantStorageView {
  @ApiProperty({ nullable: true, type: Number, description: 'Last measurement; null if never measured' }) usedBytes!: number | null;
  @ApiProperty({ description: "The current tier's quota" }) quotaBytes!: number;
  @ApiDateTime({ nullable: true }) measuredAt!: Date | null;
  @ApiProperty({ description: 'Writes refused because the quota is exceeded' }) frozen!: boolean;
}

export class TenantJobSummaryView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: JobType }) type!: JobType;
  @ApiProperty({ enum: JobStatus }) status!: JobStatus;
  @ApiProperty() attempts!: number;
  @ApiProperty() maxAttempts!: number;
  @ApiProperty({ nullable: true, type: String }) lastError!: string | null;
  @ApiDateTime() runAt!: Date;
  @ApiDateTime() createdAt!: Date;
  @ApiDateTime({ nullable: true }) finishedAt!: Date | null;
}

/** A tenant as every tenant route returns it (tenantView): no password anywhere. */
export class TenantView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'acme' }) slug!: string;
  @ApiProperty({ example: 'Acme Corp' }) name!: string;
  @ApiProperty({ enum: TenantStatus }) status!: TenantStatus;
  @ApiProperty({ example: 'pro' }) tier!: string;
  @ApiProperty({ example: 'eu-west-1' }) region!: string;
  @ApiProperty({ nullable: true, type: String, example: 'db.acme.com' }) customDomain!: string | null;
  @ApiProperty({ type: TenantStripeView }) stripe!: TenantStripeView;
  @ApiProperty({ nullable: true, type: String }) suspendReason!: string | null;
  @ApiProperty({ type: TenantSuspensionView, nullable: true, description: 'Who suspended the tenant and why; null when not suspended' }) suspension!: TenantSuspensionView | null;
  @ApiProperty({ nullable: true, type: String }) failureReason!: string | null;
  @ApiProperty({ enum: FailedDuring, nullable: true, description: 'The operation a failed tenant failed in (what a retry repeats)' }) failedDuring!: FailedDuring | null;
  @ApiDateTime({ nullable: true, description: 'Scheduled offboarding' }) offboardAt!: Date | null;
  @ApiDateTime() createdAt!: Date;
  @ApiDateTime() updatedAt!: Date;
  @ApiDateTime({ nullable: true }) deletedAt!: Date | null;
  @ApiProperty({ description: 'Row version, incremented on every change' }) version!: number;
}

/** GET /v1/tenants/{id}: the tenant with its connection, schema version, storage and recent jobs. */
export class TenantDetailView extends TenantView {
  @ApiPropertyOptional({ type: TenantConnectionView, nullable: true, description: 'null until provisioned' }) connection?: TenantConnectionView | null;
  @ApiPropertyOptional({ type: TenantSchemaView, nullable: true }) schema?: TenantSchemaView | null;
  @ApiPropertyOptional({ type: TenantStorageView }) storage?: TenantStorageView;
  @ApiPropertyOptional({ type: [TenantJobSummaryView], description: 'The 10 most recent jobs' }) jobs?: TenantJobSummaryView[];
}

export class TenantListView {
  @ApiProperty({ type: [TenantView] }) items!: TenantView[];
  @ApiProperty({ description: 'Matching tenants in all pages' }) total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

export class CredentialRotationView {
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The queued rotation job (null if one was already queued: dedupe)' }) jobId!: string | null;
}

export class AuditCauseView {
  @ApiProperty({ enum: ['stripe_event', 'admin', 'system'] }) type!: string;
  @ApiProperty({ nullable: true, type: String, description: 'Stripe event id, request id or system task' }) id!: string | null;
}

/** Who did something (an audit row's actor). */
export class ActorView {
  @ApiProperty({ enum: ACTOR_KINDS, description: '`operator` (a named operator, through a token), `break-glass` (ADMIN_TOKEN), `billing` (a Stripe event), `system` (the worker)' }) kind!: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) operatorId!: string | null;
  @ApiProperty({ nullable: true, type: String, description: "The operator's email when they acted" }) email!: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) tokenId!: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'silo_op_3f9a1c2b7d4e' }) tokenPrefix!: string | null;
}

export class HistoryEntryView {
  @ApiProperty({ example: '42', description: 'Audit entry id (a bigint as a string): pass as `before` to page' }) id!: string;
  @ApiProperty({ example: 'status_changed' }) action!: string;
  @ApiProperty({ nullable: true, type: String }) from!: string | null;
  @ApiProperty({ nullable: true, type: String }) to!: string | null;
  @ApiProperty({ type: AuditCauseView }) cause!: AuditCauseView;
  @ApiProperty({ type: ActorView, description: 'Who acted' }) actor!: ActorView;
  @ApiProperty({ type: 'object', additionalProperties: true }) detail!: Record<string, unknown>;
  @ApiDateTime() at!: Date;
}

export class HistoryView {
  @ApiProperty({ type: [HistoryEntryView] }) items!: HistoryEntryView[];
}

export class JobRunView {
  @ApiProperty() attempt!: number;
  @ApiProperty({ description: 'Worker id' }) worker!: string;
  @ApiDateTime() startedAt!: Date;
  @ApiDateTime({ nullable: true }) finishedAt!: Date | null;
  @ApiProperty({ enum: JobRunOutcome, nullable: true, description: 'null while running' }) outcome!: JobRunOutcome | null;
  @ApiProperty({ nullable: true, type: String }) error!: string | null;
}

export class TenantJobView extends TenantJobSummaryView {
  @ApiProperty() log!: string;
  @ApiProperty({ type: [JobRunView], description: 'Each attempt' }) runs!: JobRunView[];
}

export class TenantJobsView {
  @ApiProperty({ type: [TenantJobView] }) items!: TenantJobView[];
}

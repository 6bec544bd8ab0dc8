import { Column, Entity, PrimaryColumn } from 'typeorm';

const bigintNumber = { to: (v: number | null) => v, from: (v: string | null) => (v == null ? null : Number(v)) };

/** Last storage measurement of a tenant's database and its write freeze (storage-quota.service.ts). */
@Entity('tenant_storage')
export class TenantStorage {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('bigint', { name: 'used_bytes', transformer: bigintNumber }) usedBytes!: number;
  /** The quota the measurement was judged against (the tier's when measured). */
  @Column('bigint', { name: 'quota_bytes', transformer: bigintNumber }) quotaBytes!: number;
  @Column('timestamptz', { name: 'measured_at' }) measuredAt!: Date;
  @Column('boolean') frozen!: boolean;
  @Column('timestamptz', { name: 'frozen_at', nullable: true }) frozenAt!: Date | null;
  /** When the warning threshold was crossed (cleared once usage is well under it again). */
  @Column('timestamptz', { name: 'warned_at', nullable: true }) warnedAt!: Date | null;
  /** Why the last freeze or unfreeze failed (the sweep retries on its next run). */
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
}

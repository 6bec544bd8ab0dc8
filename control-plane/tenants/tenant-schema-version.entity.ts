import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Mirror of each tenant database's migration ledger, so `silo migrate status` needs no fan-out. */
@Entity('tenant_schema_versions')
export class TenantSchemaVersion {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text', { nullable: true }) version!: string | null;
  @Column('integer', { name: 'applied_count' }) appliedCount!: number;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  @Column('text', { nullable: true }) drift!: string | null;
  /** Digest of the tenant's own ledger when last mirrored (`silo migrate status --check` compares it). */
  @Column('text', { name: 'ledger_digest', nullable: true }) ledgerDigest!: string | null;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

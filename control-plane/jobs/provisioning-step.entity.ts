import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** A completed step of a tenant operation (provision, deprovision): replayed, not re-run, after a crash. */
@Entity('provisioning_steps')
export class ProvisioningStep {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @PrimaryColumn('text') operation!: string;
  @PrimaryColumn('text') step!: string;
  @Column('jsonb', { nullable: true }) result!: unknown;
  @CreateDateColumn({ name: 'completed_at', type: 'timestamptz' }) completedAt!: Date;
}

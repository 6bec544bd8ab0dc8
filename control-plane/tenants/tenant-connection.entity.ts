import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Where a tenant's database lives. There is deliberately no password column. */
@Entity('tenant_connections')
export class TenantConnection {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') driver!: string;
  @Column('text') host!: string;
  @Column('integer') port!: number;
  @Column('text') database!: string;
  @Column('text') username!: string;
  @Column('text', { name: 'secret_ref' }) secretRef!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'rotated_at', nullable: true }) rotatedAt!: Date | null;
}

import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A named person who uses the admin API. Never deleted: disabled, so the audit log keeps naming them. */
@Entity('operators')
export class Operator {
  @PrimaryColumn('uuid') id!: string;
  /** Unique case-insensitively. */
  @Column('text') email!: string;
  @Column('text') name!: string;
  /** One of ROLES (control-plane/common/permissions.ts); an unknown role holds no permission. */
  @Column('text') role!: string;
  @Column('timestamptz', { name: 'disabled_at', nullable: true }) disabledAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

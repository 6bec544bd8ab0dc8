import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** A personal API token of an operator: `silo_op_<prefix>_<secret>`, of which only a SHA-256 is kept. */
@Entity('operator_tokens')
export class OperatorToken {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'operator_id' }) operatorId!: string;
  @Column('text') name!: string;
  /** Public, unique lookup part (12 hex chars). */
  @Column('text') prefix!: string;
  /** SHA-256 (hex) of the whole token. */
  @Column('text') hash!: string;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
  @Column('timestamptz', { name: 'last_used_at', nullable: true }) lastUsedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { ActorKind } from '../common/actor-context';

export type AuditCauseType = 'stripe_event' | 'admin' | 'system';

@Entity('audit_log')
export class AuditEntry {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: string;
  @Column('uuid', { name: 'tenant_id', nullable: true }) tenantId!: string | null;
  @Column('text') action!: string;
  @Column('text', { name: 'from_status', nullable: true }) fromStatus!: string | null;
  @Column('text', { name: 'to_status', nullable: true }) toStatus!: string | null;
  @Column('text', { name: 'cause_type' }) causeType!: AuditCauseType;
  @Column('text', { name: 'cause_id', nullable: true }) causeId!: string | null;
  @Column('jsonb') detail!: Record<string, unknown>;
  /** Who acted (common/actor-context.ts); the operator's id and email as they were, and the token used. */
  @Column('text', { name: 'actor_kind' }) actorKind!: ActorKind;
  @Column('uuid', { name: 'actor_operator_id', nullable: true }) actorOperatorId!: string | null;
  @Column('text', { name: 'actor_email', nullable: true }) actorEmail!: string | null;
  @Column('uuid', { name: 'actor_token_id', nullable: true }) actorTokenId!: string | null;
  @Column('text', { name: 'actor_token_prefix', nullable: true }) actorTokenPrefix!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

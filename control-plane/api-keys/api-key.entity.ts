import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

@Entity('api_keys')
export class ApiKey {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  /** Public, unique lookup part of the key (shown in listings). */
  @Column('text') prefix!: string;
  /** SHA-256 of the whole key. Keys carry 256 random bits, so a fast hash is safe and keeps lookups cheap. */
  @Column('text') hash!: string;
  /** SCRAM-SHA-256 StoredKey and ServerKey (base64) for the PostgreSQL front door; NULL for keys issued before them (cleartext only). */
  @Column('text', { name: 'scram_stored_key', nullable: true }) scramStoredKey!: string | null;
  @Column('text', { name: 'scram_server_key', nullable: true }) scramServerKey!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'last_used_at', nullable: true }) lastUsedAt!: Date | null;
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt!: Date | null;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
}

import type { Pool } from 'pg';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { envelopeDecrypt, envelopeEncrypt } from './envelope';
import { SecretStore, TenantSecret } from './secret-store';

const REF_PREFIX = 'local:';

/**
 * Secrets in the control database, envelope-encrypted: each value has its own AES-256-GCM data
 * key, wrapped by SILO_MASTER_KEY. The database alone never yields a password.
 */
export class LocalSecretStore implements SecretStore {
  readonly kind = 'local' as const;

  constructor(private readonly db: Pool, private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  }

  async create(name: string, value: TenantSecret, opts: { tenantId?: string } = {}): Promise<string> {
    const { wrappedKey, ciphertext } = envelopeEncrypt(this.masterKey, Buffer.from(JSON.stringify(value)), name);
    // A soft-deleted secret of the same name is replaced; a live one is kept (create is idempotent).
    await this.db.query(
      `INSERT INTO local_secrets (name, tenant_id, wrapped_key, ciphertext) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET wrapped_key = EXCLUDED.wrapped_key, ciphertext = EXCLUDED.ciphertext,
         tenant_id = EXCLUDED.tenant_id, version = local_secrets.version + 1, updated_at = now(), deleted_at = NULL, purge_after = NULL
       WHERE local_secrets.deleted_at IS NOT NULL`,
      [name, opts.tenantId ?? null, wrappedKey, ciphertext],
    );
    return REF_PREFIX + name;
  }

  async get(ref: string): Promise<TenantSecret> {
    const name = this.nameOf(ref);
    const { rows } = await this.db.query<{ wrapped_key: Buffer; ciphertext: Buffer }>(
      'SELECT wrapped_key, ciphertext FROM local_secrets WHERE name = $1 AND deleted_at IS NULL',
      [name],
    );
    if (!rows[0]) throw new SiloError(ErrorCode.SECRET_NOT_FOUND, 'Secret not found', 404, { ref });
    try {
      return JSON.parse(envelopeDecrypt(this.masterKey, rows[0].wrapped_key, rows[0].ciphertext, name).toString()) as TenantSecret;
    } catch {
      throw new SiloError(ErrorCode.SECRET_STORE_FAILED, 'Secret could not be decrypted (wrong SILO_MASTER_KEY?)', 500, { ref });
    }
  }

  async rotate(ref: string, value: TenantSecret): Promise<void> {
    const name = this.nameOf(ref);
    const { wrappedKey, ciphertext } = envelopeEncrypt(this.masterKey, Buffer.from(JSON.stringify(value)), name);
    const res = await this.db.query(
      `UPDATE local_secrets SET wrapped_key = $2, ciphertext = $3, version = version + 1, updated_at = now()
       WHERE name = $1 AND deleted_at IS NULL`,
      [name, wrappedKey, ciphertext],
    );
    if (res.rowCount === 0) throw new SiloError(ErrorCode.SECRET_NOT_FOUND, 'Secret not found', 404, { ref });
  }

  async delete(ref: string, opts: { recoveryWindowDays: number }): Promise<void> {
    await this.db.query(
      `UPDATE local_secrets SET deleted_at = now(), purge_after = now() + make_interval(days => $2::int)
       WHERE name = $1 AND deleted_at IS NULL`,
      [this.nameOf(ref), Math.max(0, Math.floor(opts.recoveryWindowDays))],
    );
  }

  async list(prefix: string): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      `SELECT name FROM local_secrets WHERE deleted_at IS NULL AND starts_with(name, $1) ORDER BY name`,
      [prefix],
    );
    return rows.map((r) => REF_PREFIX + r.name);
  }

  /** Removes soft-deleted secrets whose recovery window has passed. */
  async purgeExpired(): Promise<number> {
    const res = await this.db.query('DELETE FROM local_secrets WHERE purge_after IS NOT NULL AND purge_after <= now()');
    return res.rowCount ?? 0;
  }

  private nameOf(ref: string): string {
    if (!ref.startsWith(REF_PREFIX)) throw new SiloError(ErrorCode.SECRET_NOT_FOUND, 'Not a local secret reference', 400, { ref });
    return ref.slice(REF_PREFIX.length);
  }
}

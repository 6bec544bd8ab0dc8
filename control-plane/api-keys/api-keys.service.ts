import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../common/logger';
import { DirectoryPublisher } from '../../common/tenant-directory';
import { CLOCK, DIRECTORY, LOGGER } from '../common/tokens';
import { tenantNotFound } from '../tenants/tenant.errors';
import { TenantStatus } from '../tenants/tenant-status';
import { apiKeyScramVerifier, generateApiKey } from '../../common/api-key-format';
import { ApiKey } from './api-key.entity';
import { apiKeyNotFound, apiKeyRevoked, tooManyApiKeys } from './api-key.errors';
import { ApiKeyRepository } from './api-key.repository';

export const MAX_ACTIVE_KEYS_PER_TENANT = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A key as issued: the only time the secret exists outside the caller's hands. */
export interface IssuedApiKey {
  record: ApiKey;
  key: string;
}

/**
 * Tenant API keys: issue (secret shown once), list, rotate, revoke. Only a hash and a SCRAM verifier are stored.
 * Revocation and rotation publish an invalidation so every runtime replica drops the key at once.
 */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly keys: ApiKeyRepository,
    @Inject(DIRECTORY) private readonly directory: DirectoryPublisher,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  async issue(tenantRef: string, input: { name: string; expiresAt?: Date | null }): Promise<IssuedApiKey> {
    const tenant = await this.liveTenant(tenantRef);
    return this.keys.transaction(async (m) => {
      if ((await this.keys.countActive(tenant.id, this.now(), m)) >= MAX_ACTIVE_KEYS_PER_TENANT) throw tooManyApiKeys(MAX_ACTIVE_KEYS_PER_TENANT);
      const issued = await this.insertKey(tenant.id, input.name, input.expiresAt ?? null, m);
      await this.keys.audit(tenant.id, 'api_key_created', { keyId: issued.record.id, prefix: issued.record.prefix, name: input.name }, m);
      return issued;
    });
  }

  async list(tenantRef: string): Promise<ApiKey[]> {
    const tenant = await this.liveTenant(tenantRef);
    return this.keys.list(tenant.id);
  }

  /**
   * Issues a replacement with the same name. The old key stops working now, or after
   * `graceSeconds` (so clients can roll over without an outage).
   */
  async rotate(tenantRef: string, keyId: string, graceSeconds = 0): Promise<IssuedApiKey & { replaced: ApiKey }> {
    const tenant = await this.liveTenant(tenantRef);
    const result = await this.keys.transaction(async (m) => {
      const old = await this.keys.findForUpdate(tenant.id, keyId, m);
      if (!old) throw apiKeyNotFound(keyId);
      if (old.revokedAt) throw apiKeyRevoked(keyId);
      const now = this.now();
      const issued = await this.insertKey(tenant.id, old.name, old.expiresAt, m);
      if (graceSeconds > 0) {
        const until = new Date(now.getTime() + graceSeconds * 1000);
        if (!old.expiresAt || old.expiresAt > until) await this.keys.expire(old.id, until, m);
      } else {
        await this.keys.revoke(old.id, now, m);
      }
      await this.keys.audit(tenant.id, 'api_key_rotated', { keyId: old.id, prefix: old.prefix, replacedBy: issued.record.id, graceSeconds }, m);
      return { ...issued, replaced: old };
    });
    await this.directory.invalidateApiKey(result.replaced.prefix, tenant.id);
    return result;
  }

  /** Idempotent: revoking a revoked key changes nothing but still re-broadcasts the invalidation. */
  async revoke(tenantRef: string, keyId: string): Promise<ApiKey> {
    const tenant = await this.liveTenant(tenantRef);
    const key = await this.keys.transaction(async (m) => {
      const k = await this.keys.findForUpdate(tenant.id, keyId, m);
      if (!k) throw apiKeyNotFound(keyId);
      if (!k.revokedAt) {
        await this.keys.revoke(k.id, this.now(), m);
        await this.keys.audit(tenant.id, 'api_key_revoked', { keyId: k.id, prefix: k.prefix }, m);
      }
      return (await this.keys.findForUpdate(tenant.id, keyId, m)) as ApiKey;
    });
    await this.directory.invalidateApiKey(key.prefix, tenant.id);
    this.logger.info({ tenantId: tenant.id, keyId: key.id, prefix: key.prefix }, 'api key revoked');
    return key;
  }

  private async insertKey(tenantId: string, name: string, expiresAt: Date | null, m: Parameters<ApiKeyRepository['insert']>[1]): Promise<IssuedApiKey> {
    const { key, prefix, hash } = generateApiKey();
    const { storedKey, serverKey } = apiKeyScramVerifier(key, tenantId);
    const record = await this.keys.insert({
      id: randomUUID(), tenantId, name, prefix, hash, expiresAt, scramStoredKey: storedKey.toString('base64'), scramServerKey: serverKey.toString('base64'),
    }, m);
    return { record, key };
  }

  private async liveTenant(ref: string) {
    const tenant = await this.keys.findTenant(UUID.test(ref) ? { id: ref.toLowerCase() } : { slug: ref });
    if (!tenant || tenant.status === TenantStatus.Deleted) throw tenantNotFound(ref);
    return tenant;
  }
}

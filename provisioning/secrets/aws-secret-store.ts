import { randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { SecretStore, TenantSecret } from './secret-store';

export interface AwsSecretStoreOptions {
  /** Prepended to every name given to `create` and `list`. Default `silo/tenants/`. */
  prefix?: string;
  /** Customer-managed KMS key for new secrets; Secrets Manager's default key when absent. */
  kmsKeyId?: string;
}

// AWS accepts a recovery window of 7 to 30 days.
const MIN_RECOVERY_DAYS = 7;
const MAX_RECOVERY_DAYS = 30;

/**
 * SecretStore on AWS Secrets Manager. A ref is the secret ARN. Error messages name the
 * operation, the ref and the AWS error name only: never a secret value, and never AWS's own
 * message text, so nothing echoed back can leak.
 */
export class AwsSecretStore implements SecretStore {
  readonly kind = 'aws' as const;
  private readonly prefix: string;

  constructor(private readonly client: SecretsManagerClient, private readonly options: AwsSecretStoreOptions = {}) {
    this.prefix = options.prefix ?? 'silo/tenants/';
  }

  async create(name: string, value: TenantSecret, opts: { tenantId?: string } = {}): Promise<string> {
    const fullName = this.prefix + name;
    const tags = [{ Key: 'managed-by', Value: 'silo' }];
    if (opts.tenantId) tags.push({ Key: 'silo:tenant-id', Value: opts.tenantId });
    try {
      const out = await this.client.send(new CreateSecretCommand({
        Name: fullName,
        SecretString: JSON.stringify(value),
        KmsKeyId: this.options.kmsKeyId,
        Tags: tags,
      }));
      if (!out.ARN) throw new SiloError(ErrorCode.SECRET_STORE_FAILED, `CreateSecret returned no ARN for ${fullName}`, 502);
      return out.ARN;
    } catch (e) {
      if (awsErrorName(e) !== 'ResourceExistsException') throw this.failure('create', fullName, e);
    }
    // Already there (a retried job): keep it and hand back its ref.
    try {
      const described = await this.client.send(new DescribeSecretCommand({ SecretId: fullName }));
      if (!described.ARN) throw new SiloError(ErrorCode.SECRET_STORE_FAILED, `DescribeSecret returned no ARN for ${fullName}`, 502);
      return described.ARN;
    } catch (e) {
      throw this.failure('describe', fullName, e);
    }
  }

  async get(ref: string): Promise<TenantSecret> {
    let raw: string | undefined;
    try {
      raw = (await this.client.send(new GetSecretValueCommand({ SecretId: ref }))).SecretString;
    } catch (e) {
      throw this.failure('get', ref, e);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw ?? '');
    } catch {
      // JSON.parse quotes its input in the message: never pass it on.
      throw new SiloError(ErrorCode.SECRET_STORE_FAILED, `Secret ${ref} is not valid JSON`, 500, { ref });
    }
    if (!isTenantSecret(parsed)) {
      throw new SiloError(ErrorCode.SECRET_STORE_FAILED, `Secret ${ref} lacks a string username and password`, 500, { ref });
    }
    const secret: TenantSecret = { username: parsed.username, password: parsed.password };
    // A tenant connection secret Silo wrote for IAM authentication (an RDS master secret has none of these).
    if (parsed.auth === 'iam') {
      if (typeof parsed.region !== 'string' || !parsed.region) {
        throw new SiloError(ErrorCode.SECRET_STORE_FAILED, `Secret ${ref} says auth iam but has no region`, 500, { ref });
      }
      secret.auth = 'iam';
      secret.region = parsed.region;
      if (typeof parsed.masterSecretRef === 'string') secret.masterSecretRef = parsed.masterSecretRef;
    }
    return secret;
  }

  async rotate(ref: string, value: TenantSecret): Promise<void> {
    try {
      await this.client.send(new PutSecretValueCommand({
        SecretId: ref,
        SecretString: JSON.stringify(value),
        ClientRequestToken: randomUUID(),
      }));
    } catch (e) {
      throw this.failure('rotate', ref, e);
    }
  }

  /**
   * Managed rotation of a secret owned by another service (the RDS master secret): Secrets
   * Manager `RotateSecret` with no Lambda, immediately. The owning service sets the new value.
   */
  async rotateManaged(ref: string): Promise<void> {
    try {
      await this.client.send(new RotateSecretCommand({ SecretId: ref, RotateImmediately: true, ClientRequestToken: randomUUID() }));
    } catch (e) {
      throw this.failure('rotate', ref, e);
    }
  }

  async delete(ref: string, opts: { recoveryWindowDays: number }): Promise<void> {
    const days = Math.min(MAX_RECOVERY_DAYS, Math.max(MIN_RECOVERY_DAYS, Math.round(opts.recoveryWindowDays) || MIN_RECOVERY_DAYS));
    try {
      await this.client.send(new DeleteSecretCommand({ SecretId: ref, RecoveryWindowInDays: days }));
    } catch (e) {
      if (awsErrorName(e) === 'ResourceNotFoundException' || isScheduledForDeletion(e)) return;
      throw this.failure('delete', ref, e);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const fullPrefix = this.prefix + prefix;
    const refs: string[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListSecretsCommand({
          Filters: [{ Key: 'name', Values: [fullPrefix] }],
          IncludePlannedDeletion: false,
          NextToken: nextToken,
        }));
        for (const s of page.SecretList ?? []) {
          // The name filter is a prefix match already; re-check rather than trust it blindly.
          if (s.ARN && !s.DeletedDate && s.Name?.startsWith(fullPrefix)) refs.push(s.ARN);
        }
        nextToken = page.NextToken;
      } while (nextToken);
    } catch (e) {
      throw this.failure('list', fullPrefix, e);
    }
    return refs;
  }

  private failure(op: string, ref: string, e: unknown): SiloError {
    if (e instanceof SiloError) return e;
    const name = awsErrorName(e);
    if (name === 'ResourceNotFoundException' || (op === 'get' && isScheduledForDeletion(e))) {
      return new SiloError(ErrorCode.SECRET_NOT_FOUND, `Secret not found: ${ref}`, 404, { ref });
    }
    return new SiloError(ErrorCode.SECRET_STORE_FAILED, `Secrets Manager ${op} failed for ${ref}: ${name}`, 502, {
      ref,
      awsError: name,
      requestId: (e as { $metadata?: { requestId?: string } })?.$metadata?.requestId,
    });
  }
}

function awsErrorName(e: unknown): string {
  return e instanceof Error ? e.name : 'UnknownError';
}

/** Secrets Manager answers InvalidRequestException for secrets already scheduled for deletion. */
function isScheduledForDeletion(e: unknown): boolean {
  return awsErrorName(e) === 'InvalidRequestException' && /(marked|scheduled) for deletion/i.test((e as Error).message);
}

function isTenantSecret(v: unknown): v is TenantSecret {
  return typeof v === 'object' && v !== null
    && typeof (v as TenantSecret).username === 'string' && typeof (v as TenantSecret).password === 'string';
}

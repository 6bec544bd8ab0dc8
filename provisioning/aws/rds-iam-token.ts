import type { ConnectionOptions } from 'node:tls';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { TenantSecret, tenantTlsOptions } from '../secrets/secret-store';

/** Who a token is for: the endpoint and port the client connects to, the database user, the cluster's region. */
export interface RdsIamTokenRequest {
  host: string;
  port: number;
  username: string;
  region: string;
}

export type RdsIamCredentials = AwsCredentialIdentity | AwsCredentialIdentityProvider;

/**
 * Signs RDS IAM database authentication tokens (a SigV4-presigned `connect` URL for `rds-db`,
 * valid 15 minutes, offline: no AWS call). One credential provider for the whole process: the
 * default is the SDK's node chain (the ECS task role), resolved once and refreshed before expiry,
 * not once per connect. (`@aws-sdk/credential-providers` comes with `@aws-sdk/rds-signer`, which
 * pins the same release.)
 */
export class RdsIamTokens {
  private credentials: RdsIamCredentials | undefined;

  constructor(credentials?: RdsIamCredentials) {
    this.credentials = credentials;
  }

  token(req: RdsIamTokenRequest): Promise<string> {
    // Loaded on first use: a runtime with only password tenants never loads the AWS SDK.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { Signer } = require('@aws-sdk/rds-signer') as typeof import('@aws-sdk/rds-signer');
    this.credentials ??= (require('@aws-sdk/credential-providers') as typeof import('@aws-sdk/credential-providers')).fromNodeProviderChain();
    /* eslint-enable @typescript-eslint/no-require-imports */
    return new Signer({ hostname: req.host, port: req.port, username: req.username, region: req.region, credentials: this.credentials }).getAuthToken();
  }
}

let shared: RdsIamTokens | undefined;
/** The process's signer with the default credential chain, created on first use. */
export function defaultRdsIamTokens(): RdsIamTokens {
  return (shared ??= new RdsIamTokens());
}

/**
 * TLS for an IAM login: required and verified. RDS certificates chain to the Amazon RDS CAs,
 * which are not in Node's default store; the images add the RDS global bundle through
 * NODE_EXTRA_CA_CERTS (infra/docker/*.Dockerfile). Hostname verification is on (the host name is
 * the cluster endpoint).
 */
export const RDS_IAM_TLS: ConnectionOptions = { rejectUnauthorized: true };

/**
 * The password and TLS options of a tenant login: for an IAM secret a fresh token (call once per
 * connect: a token lives 15 minutes, an open connection outlives it) and verified TLS; otherwise
 * the secret's password and its TLS options (tenantTlsOptions).
 */
export async function tenantLogin(
  secret: TenantSecret,
  target: { host: string; port: number; user: string },
  tokens: RdsIamTokens = defaultRdsIamTokens(),
): Promise<{ password: string; ssl: ConnectionOptions | undefined }> {
  if (secret.auth !== 'iam') return { password: secret.password, ssl: tenantTlsOptions(secret) };
  const password = await tokens.token({ host: target.host, port: target.port, username: target.user, region: secret.region as string });
  return { password, ssl: RDS_IAM_TLS };
}

/**
 * The region in an RDS endpoint name (`<cluster>.cluster-<id>.<region>.rds.amazonaws.com`, and
 * `….rds.amazonaws.com.cn`), or null for any other host name.
 */
export function rdsRegionOf(host: string): string | null {
  return /\.([a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$/i.exec(host)?.[1]?.toLowerCase() ?? null;
}

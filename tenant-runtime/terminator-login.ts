import { CLUSTER_TERMINATOR_DATABASE } from '../provisioning/aws/cluster-terminator-role';
import { defaultRdsIamTokens, RDS_IAM_TLS, RdsIamTokens, rdsRegionOf } from '../provisioning/aws/rds-iam-token';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { TerminatorLoginSource } from './backend-terminator';

/** `iam:<user>`: log in as that database user with an RDS IAM token. */
const IAM_PREFIX = 'iam:';
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The IAM user a RUNTIME_TERMINATOR_SECRET_REF names (`iam:silo_terminator`), null for a secret ref, throws on a malformed one. */
export function iamTerminatorUser(ref: string): string | null {
  if (!ref.startsWith(IAM_PREFIX)) return null;
  const user = ref.slice(IAM_PREFIX.length);
  if (!ROLE_NAME.test(user)) throw new Error(`not a role name after ${IAM_PREFIX}: ${JSON.stringify(user)}`);
  return user;
}

/**
 * Where the terminator's login comes from, by RUNTIME_TERMINATOR_SECRET_REF:
 * - `none`: no terminator (null);
 * - `iam:<user>` (AWS): `<user>` on the backend's own server, a fresh RDS IAM token per connect
 *   signed for that host and port and the region in its RDS endpoint name (else `region`), over
 *   verified TLS, into the maintenance database. Nothing is read from the secret store;
 * - anything else: a secret ref holding `{ username, password, database? }` (the local driver's
 *   terminator role), read for each server's pool and again after a refused login.
 */
export function terminatorLoginFor(
  ref: string,
  o: { secrets: SecretStore; region?: string; tokens?: RdsIamTokens },
): TerminatorLoginSource | null {
  if (ref === 'none') return null;
  const iamUser = iamTerminatorUser(ref);
  if (iamUser === null) {
    return async () => {
      const s = (await o.secrets.get(ref)) as { username: string; password: string; database?: string };
      return { user: s.username, password: s.password, database: s.database ?? 'postgres' };
    };
  }
  return async (server) => {
    const region = rdsRegionOf(server.host) ?? o.region;
    if (!region) throw new Error(`no region for an IAM token to ${server.host}: not an RDS endpoint name and no AWS_REGION`);
    const tokens = o.tokens ?? defaultRdsIamTokens();
    return {
      user: iamUser,
      password: () => tokens.token({ host: server.host, port: server.port, username: iamUser, region }),
      database: CLUSTER_TERMINATOR_DATABASE,
      ssl: RDS_IAM_TLS,
    };
  };
}

import { Client } from 'pg';
import { ident } from '../provisioning/local/pg-names';
import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import { tenantLogin } from '../provisioning/aws/rds-iam-token';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { MigrationRequest, sessionOptions } from './database-migrator';

const APPLICATION_NAME = 'silo-migrate';
const CONNECT_TIMEOUT_MS = 10_000;

/** Opens a session as the tenant's own role (credentials from the secret store), so migrated objects stay the tenant's. */
export function tenantSession(conn: TenantConnectionInfo, secrets: SecretStore, req: Pick<MigrationRequest, 'statementTimeoutMs' | 'lockTimeoutMs'>): () => Promise<Client> {
  return async () => {
    const secret = await secrets.get(conn.secretRef);
    // On Aurora the tenant's role logs in with an IAM token (rds-iam-token.ts), elsewhere with its password.
    const { password, ssl } = await tenantLogin(secret, { host: conn.host, port: conn.port, user: conn.username });
    const client = new Client({
      host: conn.host, port: conn.port, database: conn.database, user: conn.username, password, ssl,
      application_name: APPLICATION_NAME, options: sessionOptions(req), connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    await connect(client);
    return client;
  };
}

/**
 * Opens a session on the template database with admin credentials, then becomes the template
 * owner: objects created are the owner's, and REASSIGN OWNED hands them to each cloned tenant.
 */
export function templateSession(templateAdminUrl: string, templateOwner: string, req: Pick<MigrationRequest, 'statementTimeoutMs' | 'lockTimeoutMs'>): () => Promise<Client> {
  return async () => {
    const client = new Client({ connectionString: templateAdminUrl, application_name: APPLICATION_NAME, options: sessionOptions(req), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    await connect(client);
    try {
      await client.query(`SET ROLE ${ident(templateOwner)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  };
}

async function connect(client: Client): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

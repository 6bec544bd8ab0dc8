import { MigrationInterface, QueryRunner } from 'typeorm';

/** The control database. Lifecycle states and job statuses are checked here too, so no code path can write an unknown one. */
export class InitialSchema1732300000000 implements MigrationInterface {
  name = 'InitialSchema1732300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        slug varchar(63) NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$'),
        name text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending','provisioning','active','suspended','failed','deprovisioning','deleted')),
        tier text NOT NULL,
        region text NOT NULL,
        stripe_customer_id text,
        stripe_subscription_id text UNIQUE,
        billing_status text,
        past_due_since timestamptz,
        suspend_reason text,
        offboard_at timestamptz,
        last_event_created bigint,
        failure_reason text,
        custom_domain text UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        version integer NOT NULL DEFAULT 1
      )`);
    await q.query(`CREATE INDEX tenants_status_idx ON tenants (status, created_at)`);
    await q.query(`CREATE INDEX tenants_offboard_idx ON tenants (offboard_at) WHERE offboard_at IS NOT NULL`);

    await q.query(`
      CREATE TABLE tenant_connections (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
        driver text NOT NULL,
        host text NOT NULL,
        port integer NOT NULL,
        database text NOT NULL,
        username text NOT NULL,
        secret_ref text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        rotated_at timestamptz
      )`);

    await q.query(`
      CREATE TABLE webhook_events (
        id text PRIMARY KEY,
        type text NOT NULL,
        payload jsonb NOT NULL,
        stripe_created_at timestamptz NOT NULL,
        subscription_id text,
        tenant_id uuid,
        outcome text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz
      )`);
    await q.query(`CREATE INDEX webhook_events_subscription_idx ON webhook_events (subscription_id, stripe_created_at)`);

    await q.query(`
      CREATE TABLE jobs (
        id uuid PRIMARY KEY,
        type text NOT NULL,
        tenant_id uuid,
        payload jsonb NOT NULL DEFAULT '{}',
        status text NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 5,
        run_at timestamptz NOT NULL DEFAULT now(),
        locked_by text,
        locked_until timestamptz,
        last_error text,
        log text NOT NULL DEFAULT '',
        dedupe_key text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`);
    // One open job per dedupe key (e.g. "provision:<tenant>"): re-enqueueing is a no-op.
    await q.query(`CREATE UNIQUE INDEX jobs_open_dedupe_idx ON jobs (dedupe_key) WHERE status IN ('queued','running')`);
    await q.query(`CREATE INDEX jobs_ready_idx ON jobs (run_at) WHERE status = 'queued'`);
    await q.query(`CREATE INDEX jobs_tenant_idx ON jobs (tenant_id, created_at)`);

    await q.query(`
      CREATE TABLE provisioning_steps (
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        operation text NOT NULL,
        step text NOT NULL,
        result jsonb,
        completed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, operation, step)
      )`);

    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        expires_at timestamptz,
        revoked_at timestamptz
      )`);
    await q.query(`CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id)`);

    await q.query(`
      CREATE TABLE tenant_schema_versions (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
        version text,
        applied_count integer NOT NULL DEFAULT 0,
        last_error text,
        drift text,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        tenant_id uuid,
        action text NOT NULL,
        from_status text,
        to_status text,
        cause_type text NOT NULL CHECK (cause_type IN ('stripe_event','admin','system')),
        cause_id text,
        detail jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id)`);

    // Local secret store: envelope-encrypted values (a per-secret data key wrapped by the master key).
    await q.query(`
      CREATE TABLE local_secrets (
        name text PRIMARY KEY,
        tenant_id uuid,
        wrapped_key bytea NOT NULL,
        ciphertext bytea NOT NULL,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        purge_after timestamptz
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['local_secrets', 'audit_log', 'tenant_schema_versions', 'api_keys', 'provisioning_steps', 'jobs', 'webhook_events', 'tenant_connections', 'tenants']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}

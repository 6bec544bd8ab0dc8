-- 0001_silo_baseline: a key/value table Silo owns in every tenant database (app-neutral, no extensions).
-- Tenant apps must not depend on it; it proves the migration path end to end on every tenant.

-- migrate:up
CREATE TABLE _silo_meta (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE _silo_meta;

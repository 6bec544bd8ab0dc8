-- 0003_items_status: the measured fleet migration, an ADD COLUMN and an index.

-- migrate:up
ALTER TABLE items ADD COLUMN status text NOT NULL DEFAULT 'new';
CREATE INDEX items_status_idx ON items (status);

-- migrate:down
DROP INDEX items_status_idx;
ALTER TABLE items DROP COLUMN status;

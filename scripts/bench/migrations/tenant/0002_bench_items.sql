-- 0002_bench_items: the application table the benchmark changes (100 rows per tenant).

-- migrate:up
CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;

-- migrate:down
DROP TABLE items;

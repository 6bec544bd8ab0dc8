import { Client } from 'pg';

type Handles = { stopPostgres?: () => Promise<void>; stopRedis?: () => void };

export default async function globalTeardown(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  const template = process.env.SILO_TEST_TEMPLATE_DB;
  if (url && template) {
    const c = new Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => undefined);
    await c.end();
  }
  const h = (globalThis as unknown as { __siloTest?: Handles }).__siloTest;
  h?.stopRedis?.();
  await h?.stopPostgres?.();
}

import type { ClientBase } from 'pg';

/** Runs `fn` between BEGIN and COMMIT on `c`; rolls back (and rethrows) if it fails. */
export async function inTransaction<T>(c: ClientBase, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    const out = await fn();
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * What the control-database owners need from a connection: `query(sql, params)`. A pg Pool, Client
 * or PoolClient satisfies it, and so does a TypeORM DataSource, EntityManager or QueryRunner (pass
 * the caller's EntityManager to run inside its transaction).
 */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * Runs a statement and returns its rows, whatever the client: pg answers `{ rows }`; TypeORM's
 * postgres driver answers the rows, or `[rows, affectedCount]` for UPDATE and DELETE.
 */
export async function queryRows<R>(db: Queryable, sql: string, params: unknown[] = []): Promise<R[]> {
  const result = await db.query(sql, params);
  if (Array.isArray(result)) {
    const isUpdateTuple = result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number';
    return (isUpdateTuple ? result[0] : result) as R[];
  }
  return ((result as { rows?: unknown[] } | null)?.rows ?? []) as R[];
}

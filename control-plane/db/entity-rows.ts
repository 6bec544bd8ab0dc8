import { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';

/**
 * Raw rows ↔ entities, for statements TypeORM does not issue itself (pipelined ones, RETURNING *),
 * and a snapshot of what was loaded so a save writes only the columns that changed, in one
 * statement and without reading the row again.
 */
const loaded = new WeakMap<object, Map<string, unknown>>();

/** An entity from a row keyed by column names, converted the way TypeORM hydrates (types, transformers). */
export function hydrate<T extends ObjectLiteral>(m: EntityManager, target: EntityTarget<T>, row: Record<string, unknown>): T {
  const meta = m.connection.getMetadata(target);
  const entity = meta.create() as T;
  for (const col of meta.columns) {
    if (col.databaseName in row) col.setEntityValue(entity, m.connection.driver.prepareHydratedValue(row[col.databaseName], col));
  }
  remember(m, target, entity);
  return entity;
}

/** Records the entity's column values as the database holds them (after a load, an insert or a save). */
export function remember<T extends ObjectLiteral>(m: EntityManager, target: EntityTarget<T>, entity: T): T {
  const meta = m.connection.getMetadata(target);
  loaded.set(entity, new Map(meta.columns.map((c) => [c.databaseName, comparable(c.getEntityValue(entity))])));
  return entity;
}

/**
 * The columns of `entity` that differ from what was remembered, with their values as parameters
 * (transformers applied); null when the entity was never remembered. Never the primary key, the
 * version or the create/update timestamps (the database maintains those).
 */
export function changedColumns<T extends ObjectLiteral>(m: EntityManager, target: EntityTarget<T>, entity: T): Array<{ column: ColumnMetadata; value: unknown }> | null {
  const before = loaded.get(entity);
  if (!before) return null;
  const meta = m.connection.getMetadata(target);
  return meta.columns
    .filter((c) => !c.isPrimary && !c.isVersion && !c.isCreateDate && !c.isUpdateDate)
    .filter((c) => before.get(c.databaseName) !== comparable(c.getEntityValue(entity)))
    .map((c) => ({ column: c, value: m.connection.driver.preparePersistentValue(c.getEntityValue(entity), c) }));
}

/** The columns of a new entity that have a value (the database fills in the rest: defaults, version, timestamps). */
export function insertableColumns<T extends ObjectLiteral>(m: EntityManager, target: EntityTarget<T>, entity: T): Array<{ column: ColumnMetadata; value: unknown }> {
  return m.connection.getMetadata(target).columns
    .filter((c) => !c.isVersion && !c.isCreateDate && !c.isUpdateDate && c.getEntityValue(entity) !== undefined)
    .map((c) => ({ column: c, value: m.connection.driver.preparePersistentValue(c.getEntityValue(entity), c) }));
}

function comparable(v: unknown): unknown {
  if (v instanceof Date) return `date:${v.getTime()}`;
  if (v !== null && typeof v === 'object') return `json:${JSON.stringify(v)}`;
  return v;
}

import type { ClientBase } from 'pg';
import { ident } from './local/pg-names';

/**
 * Resets every setting a role may have made on itself (`ALTER ROLE current_user SET …`, per
 * database too): every parameter but those only a superuser can set, so limits the platform put
 * on the role (e.g. temp_file_limit) stay. Run as the platform's admin before re-applying the tier.
 */
export async function resetRoleSelfSettings(c: ClientBase, roleName: string): Promise<void> {
  const settings = await c.query<{ datname: string | null; param: string }>(
    `SELECT d.datname, split_part(e.entry, '=', 1) AS param
     FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase CROSS JOIN LATERAL unnest(s.setconfig) AS e(entry)
     WHERE r.rolname = $1 AND NOT EXISTS (SELECT 1 FROM pg_settings p WHERE lower(p.name) = lower(split_part(e.entry, '=', 1)) AND p.context <> 'user')`, [roleName]);
  for (const { datname, param } of settings.rows) {
    await c.query(`ALTER ROLE ${ident(roleName)}${datname === null ? '' : ` IN DATABASE ${ident(datname)}`} RESET ${ident(param)}`);
  }
}

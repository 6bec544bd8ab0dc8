import { relative } from 'node:path';
import { createMigrationFile } from '../../migrations/tenant-migration';
import type { RegisterCommand } from '../command';
import { tenantMigrationsDir } from '../config';
import { writeLine } from '../io';

/** `silo migrate create <name>`: scaffolds the next numbered file. Needs no database. */
export const registerMigrateCreate: RegisterCommand = (migrate, { io }) => {
  migrate
    .command('create')
    .description('Create the next migration file (e.g. 0002_add_orders.sql) with up and down sections')
    .argument('<name>', 'short description, e.g. add_orders')
    .option('--dir <path>', 'migrations directory (default: SILO_TENANT_MIGRATIONS_DIR or migrations/tenant)')
    .action((name: string, opts: { dir?: string }) => {
      const file = createMigrationFile(tenantMigrationsDir(io.env, io.cwd, opts.dir), name);
      writeLine(io.stdout, `Created ${relative(io.cwd, file) || file}`);
      writeLine(io.stdout, 'Write the up (and down) SQL, then: silo migrate up --all --dry-run');
    });
};

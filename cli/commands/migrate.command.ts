import type { RegisterCommand } from '../command';
import { registerMigrateCreate } from './migrate-create.command';
import { registerMigrateDown } from './migrate-down.command';
import { registerMigrateStatus } from './migrate-status.command';
import { registerMigrateUp } from './migrate-up.command';

/** `silo migrate create|status|up|down`: tenant database migrations (docs/migrations.md). */
export const registerMigrateCommands: RegisterCommand = (program, deps) => {
  const migrate = program
    .command('migrate')
    .description('Tenant database migrations: versioned files in migrations/tenant/, applied fleet-wide');
  for (const register of [registerMigrateCreate, registerMigrateStatus, registerMigrateUp, registerMigrateDown]) register(migrate, deps);
};

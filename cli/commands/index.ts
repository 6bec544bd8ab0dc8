/* eslint-disable @typescript-eslint/no-require-imports -- lazy CommonJS loading keeps `silo <command>` start-up to what that command imports */
import type { CommandModule } from '../command';

/**
 * Every `silo` top-level command, in help order. To add one (`silo tenants ...`): write
 * `cli/commands/<name>.command.ts` exporting a RegisterCommand, and add an entry here with the
 * top-level name it registers. Loaded lazily: only the command being run is imported.
 */
export const COMMANDS: readonly CommandModule[] = [
  { name: 'control-db', load: () => (require('./control-db.command') as typeof import('./control-db.command')).registerControlDbCommands },
  { name: 'migrate', load: () => (require('./migrate.command') as typeof import('./migrate.command')).registerMigrateCommands },
  { name: 'reconcile', load: () => (require('./reconcile.command') as typeof import('./reconcile.command')).registerReconcileCommand },
  { name: 'worker', load: () => (require('./worker.command') as typeof import('./worker.command')).registerWorkerCommand },
  { name: 'provision', load: () => (require('./provision.command') as typeof import('./provision.command')).registerProvisionCommands },
];

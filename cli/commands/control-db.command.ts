import type { RegisterCommand } from '../command';
import { writeLine } from '../io';

/** `silo control-db migrate`: applies pending control-database migrations (under the same advisory lock as the server). */
export const registerControlDbCommands: RegisterCommand = (program, { io, context }) => {
  const group = program.command('control-db').description('The control database (tenants, jobs, secrets)');
  group
    .command('migrate')
    .description('Apply pending control-database migrations and print what was applied')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- typeorm loads only for this command
      const { migrateControlDb } = require('../../control-plane/db/data-source') as typeof import('../../control-plane/db/data-source');
      const applied = await migrateControlDb(await context.dataSource());
      if (opts.json) return writeLine(io.stdout, JSON.stringify({ applied }));
      if (!applied.length) return writeLine(io.stdout, 'Control database is up to date.');
      writeLine(io.stdout, `Applied ${applied.length} control-database migration${applied.length > 1 ? 's' : ''}:`);
      for (const name of applied) writeLine(io.stdout, `  ${name}`);
    });
};

import { migrateDatabase } from '../../migrations/database-migrator';
import { ineligibleReason, mirrorUpdate } from '../../migrations/fleet-runner';
import { tenantSession } from '../../migrations/migration-sessions';
import { resolveTarget } from '../../migrations/tenant-migration';
import { intOption, RegisterCommand } from '../command';
import { ExitCode, UsageError } from '../errors';
import { writeLine } from '../io';
import { formatDatabaseResult } from '../output/migrate-report';
import { loadTenantMigrations, migrationServices } from './migrate-shared';

interface DownFlags {
  tenant: string;
  to: string;
  yes?: boolean;
  dryRun?: boolean;
  lockTimeout: number;
  statementTimeout: number;
  dir?: string;
  json?: boolean;
}

/** `silo migrate down --tenant <slug> --to <version>`: reverts one tenant, newest first, after confirmation. */
export const registerMigrateDown: RegisterCommand = (migrate, deps) => {
  migrate
    .command('down')
    .description('Revert one tenant to an earlier version (runs the down sections, newest first)')
    .requiredOption('--tenant <slug>', 'the tenant')
    .requiredOption('--to <version>', 'version to go back to (0: revert everything)')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'show what would be reverted; change nothing')
    .option('--lock-timeout <ms>', 'give up on a table the application keeps locked after this long (0: wait)', intOption(0), 10_000)
    .option('--statement-timeout <ms>', 'cancel a statement after this long (0: never)', intOption(0), 0)
    .option('--dir <path>', 'migrations directory (default: SILO_TENANT_MIGRATIONS_DIR or migrations/tenant)')
    .option('--json', 'print the result as JSON')
    .action(async (flags: DownFlags) => {
      const { io } = deps;
      const { migrations } = loadTenantMigrations(deps, flags.dir);
      const target = resolveTarget(migrations, flags.to, true);
      const { repo, secrets } = await migrationServices(deps);
      const [row] = await repo.list({ slugs: [flags.tenant] });
      if (!row) throw new UsageError(`unknown tenant: ${flags.tenant}`);
      const skip = ineligibleReason(row);
      if (skip) throw new UsageError(`tenant ${row.slug} cannot be migrated (${skip})`);
      const req = { direction: 'down' as const, migrations, target, lockTimeoutMs: flags.lockTimeout, statementTimeoutMs: flags.statementTimeout, lockWaitMs: 0 };
      const open = tenantSession(row.connection ?? unreachable(), secrets, req);

      if (!flags.yes && !flags.dryRun) {
        // Show exactly what will be reverted (read-only look at the ledger) before asking.
        const preview = await migrateDatabase(open, { ...req, dryRun: true });
        if (preview.outcome === 'up-to-date') {
          writeLine(io.stdout, `${row.slug} is at ${preview.from ?? '-'}: nothing to revert.`);
          return;
        }
        if (preview.outcome !== 'would-change') {
          writeLine(io.stdout, formatDatabaseResult(row.slug, preview));
          deps.setExitCode(ExitCode.Failed);
          return;
        }
        if (!io.confirm) throw new UsageError('migrate down changes a tenant\'s schema (and may drop data): confirm on a terminal or pass --yes');
        const ok = await io.confirm(`Revert ${row.slug} from ${preview.from} to ${target ?? 'nothing'} (${preview.changed.join(', ')})? Down sections may drop data. [y/N] `);
        if (!ok) {
          writeLine(io.stdout, 'Nothing was changed.');
          return;
        }
      }
      const result = await migrateDatabase(open, { ...req, dryRun: flags.dryRun });
      if (!flags.dryRun && result.outcome !== 'locked') await repo.write([mirrorUpdate(row.id, result)]);
      if (flags.json) writeLine(io.stdout, JSON.stringify({ tenant: row.slug, ...result }, null, 2));
      else writeLine(io.stdout, formatDatabaseResult(row.slug, result));
      deps.setExitCode(['reverted', 'up-to-date', 'would-change'].includes(result.outcome) ? ExitCode.Ok : ExitCode.Failed);
    });
};

function unreachable(): never {
  throw new Error('unreachable: eligible tenants have a connection');
}

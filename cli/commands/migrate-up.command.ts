import { FleetRunner } from '../../migrations/fleet-runner';
import { collect, intOption, RegisterCommand } from '../command';
import { ExitCode } from '../errors';
import { writeLine } from '../io';
import { fleetProgress, progressMode } from '../output/fleet-progress';
import { formatFleetReport } from '../output/migrate-report';
import { loadTenantMigrations, migrationServices, parseSelection, SelectionFlags, templateTarget } from './migrate-shared';

interface UpFlags extends SelectionFlags {
  to?: string;
  dryRun?: boolean;
  concurrency: number;
  canary?: number;
  continueOnError?: boolean;
  yes?: boolean;
  verify?: boolean;
  template: boolean;
  lockTimeout: number;
  statementTimeout: number;
  lockWait: number;
  dir?: string;
  json?: boolean;
}

/**
 * `silo migrate up`: the fleet run. Template first (`--all`), then the tenants in creation order,
 * sequentially unless `--concurrency`. Exit 0 when every selected tenant is at the target (or
 * after a canary that stopped for confirmation), 1 when any failed, drifted or stayed locked.
 */
export const registerMigrateUp: RegisterCommand = (migrate, deps) => {
  migrate
    .command('up')
    .description('Apply pending tenant migrations to the selected tenants (and the template, with --all)')
    .option('--all', 'every tenant with a database (active, suspended, failed after provisioning)')
    .option('--tenant <slug>', 'only this tenant (repeatable or comma-separated)', collect)
    .option('--tier <tier>', 'only tenants on this tier')
    .option('--to <version>', 'stop at this version (default: the newest file)')
    .option('--dry-run', 'show what each tenant would apply; change nothing')
    .option('--concurrency <n>', 'tenants migrated at once', intOption(1), 1)
    .option('--canary <n>', 'migrate N tenants first, then ask before continuing', intOption(1))
    .option('--continue-on-error', 'go on past failing tenants and list them at the end')
    .option('--yes', 'answer yes to the canary question (needed to continue without a terminal)')
    .option('--verify', 'connect to every tenant, even those the control database shows at the target')
    .option('--no-template', 'leave the tenant template database alone')
    .option('--lock-timeout <ms>', 'give up on a table the application keeps locked after this long (0: wait)', intOption(0), 10_000)
    .option('--statement-timeout <ms>', 'cancel a migration statement after this long (0: never)', intOption(0), 0)
    .option('--lock-wait <seconds>', 'at the end, wait this long for tenants another runner was migrating', intOption(0), 30)
    .option('--dir <path>', 'migrations directory (default: SILO_TENANT_MIGRATIONS_DIR or migrations/tenant)')
    .option('--json', 'print the report as JSON (no progress output)')
    .action(async (flags: UpFlags) => {
      const { io } = deps;
      const selection = parseSelection(flags, true, deps);
      if (!selection) return;
      const { migrations } = loadTenantMigrations(deps, flags.dir);
      const { repo, secrets } = await migrationServices(deps);
      const template = await templateTarget(deps, selection, flags.template);
      const progress = fleetProgress(io, progressMode(io, !!flags.json));
      const report = await new FleetRunner(repo, secrets).run({
        selection, migrations, to: flags.to, dryRun: flags.dryRun, concurrency: flags.concurrency, canary: flags.canary,
        continueOnError: flags.continueOnError, verify: flags.verify, template,
        lockTimeoutMs: flags.lockTimeout, statementTimeoutMs: flags.statementTimeout, lockWaitMs: flags.lockWait * 1000,
        signal: io.signal, events: progress,
        confirmContinue: async (canary, remaining) => {
          if (flags.yes) return true;
          if (io.confirm && !flags.json) return io.confirm(`Canary looks good. Continue with the remaining ${remaining} tenant${remaining === 1 ? '' : 's'}? [y/N] `);
          return false;
        },
      });
      progress.pause();
      if (report.stopped?.reason === 'canary' && !flags.yes) {
        report.stopped.message += ' Check the canary tenants, then run the same command with --yes to continue (migrated tenants are skipped).';
      }
      writeLine(io.stdout, flags.json ? JSON.stringify(report, null, 2) : formatFleetReport(report));
      deps.setExitCode(report.failures > 0 || report.stopped?.reason === 'interrupted' || report.stopped?.reason === 'failure' ? ExitCode.Failed : ExitCode.Ok);
    });
};

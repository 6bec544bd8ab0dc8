import { SingleBar } from 'cli-progress';
import { checkedStatus, FleetStatus, mirrorStatus, SchemaState } from '../../migrations/migration-status';
import { collect, intOption, RegisterCommand } from '../command';
import { ExitCode } from '../errors';
import { writeLine } from '../io';
import { templateLine } from '../output/migrate-report';
import { renderTable } from '../output/table';
import { assertTenantsExist, loadTenantMigrations, migrationServices, parseSelection, SelectionFlags, templateTarget } from './migrate-shared';

interface StatusFlags extends SelectionFlags {
  check?: boolean;
  concurrency: number;
  json?: boolean;
  dir?: string;
}

const STATE_LABEL: Record<SchemaState, string> = {
  'up-to-date': 'up to date', behind: 'behind', failed: 'FAILED', drift: 'DRIFT', unknown: 'unknown', unreachable: 'UNREACHABLE', 'not-eligible': 'not eligible',
};

/**
 * `silo migrate status`: every tenant's version, pending count and last error from the control
 * database (no fan-out); `--check` reads each tenant's own ledger and detects drift. Exit 1 when
 * a tenant has failed, drifted or could not be reached.
 */
export const registerMigrateStatus: RegisterCommand = (migrate, deps) => {
  migrate
    .command('status')
    .description('Per-tenant schema version, pending migrations and last error (from the control database)')
    .option('--all', 'every tenant (the default)')
    .option('--tenant <slug>', 'only this tenant (repeatable or comma-separated)', collect)
    .option('--tier <tier>', 'only tenants on this tier')
    .option('--check', 'connect to each tenant to read its ledger and detect drift (refreshes the control database)')
    .option('--concurrency <n>', 'tenants checked at once with --check', intOption(1), 4)
    .option('--dir <path>', 'migrations directory (default: SILO_TENANT_MIGRATIONS_DIR or migrations/tenant)')
    .option('--json', 'print the status as JSON')
    .action(async (flags: StatusFlags) => {
      const { io } = deps;
      const selection = parseSelection(flags, false, deps) ?? { all: true as const };
      const { migrations } = loadTenantMigrations(deps, flags.dir);
      const { repo, secrets } = await migrationServices(deps);
      await assertTenantsExist(repo, selection);
      let bar: SingleBar | null = null;
      const status = flags.check
        ? await checkedStatus(repo, secrets, migrations, selection, {
            concurrency: flags.concurrency,
            template: await templateTarget(deps, selection, true).then((t) => ('skip' in t ? null : t)),
            onChecked: (s, done, total) => {
              if (flags.json || !io.stderr.isTTY) return;
              bar ??= new SingleBar({ format: 'checking |{bar}| {value}/{total} tenants | ETA {eta_formatted} | {slug}', stream: io.stderr, hideCursor: true });
              if (done === 1) bar.start(total, 0, { slug: '' });
              bar.update(done, { slug: s.slug });
              if (done === total) bar.stop();
            },
          })
        : await mirrorStatus(repo, migrations, selection);
      if (flags.json) writeLine(io.stdout, JSON.stringify(status, null, 2));
      else writeLine(io.stdout, formatStatus(status, !!flags.check));
      const bad = status.counts.failed + status.counts.drift + status.counts.unreachable
        + (status.template && ['failed', 'drift'].includes(status.template.outcome) ? 1 : 0);
      deps.setExitCode(bad ? ExitCode.Failed : ExitCode.Ok);
    });
};

function formatStatus(s: FleetStatus, checked: boolean): string {
  const out: string[] = [`Latest tenant migration: ${s.latest ?? '(none)'} (${s.files} file${s.files === 1 ? '' : 's'}). Source: ${checked ? 'tenant databases (--check)' : 'control database mirror'}.`];
  if (s.template) out.push(templateLine(s.template));
  out.push('');
  out.push(renderTable(
    ['TENANT', 'STATUS', 'TIER', 'VERSION', 'PENDING', 'STATE', 'DETAIL'],
    s.tenants.map((t) => [
      t.slug, t.status, t.tier, t.version ?? '-', t.pending === null ? '?' : String(t.pending), STATE_LABEL[t.state],
      t.drift ?? t.lastError ?? t.note ?? '',
    ]),
  ));
  const counts = (Object.entries(s.counts) as Array<[SchemaState, number]>).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${STATE_LABEL[k]}`);
  out.push('', `${s.tenants.length} tenant${s.tenants.length === 1 ? '' : 's'}: ${counts.join(', ') || 'none'}.`);
  for (const w of s.mirrorWarnings) out.push(`warning: ${w}`);
  return out.join('\n');
}

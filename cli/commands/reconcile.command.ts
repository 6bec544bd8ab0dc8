import type { DataSource } from 'typeorm';
import { createKvStore } from '../../common/create-kv-store';
import { directorySignerFor } from '../../common/directory-signer';
import type { KvStore } from '../../common/kv-store';
import { createLogger, Logger } from '../../common/logger';
import { DirectoryPublisher } from '../../common/tenant-directory';
import type { ControlPlaneConfig } from '../../control-plane/config';
import { BillingReconciler, BillingReconcileReport } from '../../control-plane/billing/billing-reconciler';
import { BillingService } from '../../control-plane/billing/billing.service';
import { WebhookEventRepository } from '../../control-plane/billing/webhook-event.repository';
import { JobRepository } from '../../control-plane/jobs/job.repository';
import { ReconcilerService } from '../../control-plane/operations/reconciler.service';
import { TenantRepository } from '../../control-plane/tenants/tenant.repository';
import { TenantService } from '../../control-plane/tenants/tenant.service';
import { TierCatalog } from '../../control-plane/tenants/tier-catalog';
import type { RegisterCommand } from '../command';
import type { CliContext } from '../context';
import { ExitCode, UsageError } from '../errors';
import { CliIo, writeLine } from '../io';

/**
 * `silo reconcile [--apply] [--json]`: drift between the control DB, the database server, the secret store and Redis.
 * `silo reconcile --billing [--json]`: tenants against Stripe's subscriptions (needs STRIPE_SECRET_KEY).
 */
export const registerReconcileCommand: RegisterCommand = (program, { io, context, setExitCode }) => {
  program
    .command('reconcile')
    .description('Report drift (orphan databases/roles/secrets, outdated directory entries, missing databases) and apply safe repairs')
    .option('--apply', 'also apply destructive repairs (drop orphans, suspend tenants whose database is gone)')
    .option('--billing', "compare tenants with Stripe's subscriptions instead (STRIPE_SECRET_KEY) and replay Stripe's state where a webhook was lost")
    .option('--json', 'print the report as JSON')
    .action(async (opts: { apply?: boolean; billing?: boolean; json?: boolean }) => {
      if (opts.billing && opts.apply) throw new UsageError('--apply has no effect with --billing (billing repairs replay Stripe\'s state through the webhook rules; report-only differences need an admin)');
      if (opts.billing && !context.config.STRIPE_SECRET_KEY) throw new UsageError('STRIPE_SECRET_KEY is not set: billing reconciliation reads subscriptions from the Stripe API');
      // The services reconcile needs, built here (no Nest app, no listener, no worker) on a control
      // database this command refuses to migrate: a schema behind the CLI is a one-line exit 2.
      const services = await reconcileServices(context);
      try {
        if (opts.billing) {
          const report = await services.billing().run({ repair: true });
          printBilling(io, report, Boolean(opts.json));
          setExitCode(report.differences.some((d) => !d.repaired) ? ExitCode.Failed : ExitCode.Ok);
          return;
        }
        // The same checks as the periodic run (ReconcilerService.run). The one thing this process may
        // not see is the directory cache: without REDIS_URL it lives inside the running `npm start`
        // process (its periodic run checks it); an empty cache of our own would prove nothing.
        const checkDirectory = Boolean(context.config.REDIS_URL);
        const report = await services.drift().run({ apply: Boolean(opts.apply), checkDirectory });
        if (!report.checked.directory) {
          writeLine(io.stderr, checkDirectory
            ? 'Directory cache not checked: Redis did not answer.'
            : 'Directory cache not checked: REDIS_URL is unset, so it lives inside the running server; that server\'s periodic reconcile checks it (GET /v1/periodic-tasks, task "reconcile").');
        }
        const pending = report.drift.filter((d) => !d.repaired);
        if (opts.json) {
          writeLine(io.stdout, JSON.stringify(report));
        } else {
          const what = `${report.checked.tenants} tenants, ${report.checked.databases} tenant databases, ${report.checked.secrets} secrets`;
          writeLine(io.stdout, `Checked ${what}${report.checked.directory ? ' and the directory cache' : ' (not the directory cache)'}.`);
          if (!report.drift.length) writeLine(io.stdout, 'No drift.');
          for (const d of report.drift) {
            const tenant = d.slug && d.slug !== d.object ? `  tenant ${d.slug}` : '';
            writeLine(io.stdout, `  ${d.repaired ? 'repaired' : d.destructive ? 'needs --apply' : 'not repaired'}  ${d.kind.padEnd(18)} ${d.object}${tenant}  (${d.repair})`);
          }
        }
        setExitCode(pending.length ? ExitCode.Failed : ExitCode.Ok);
      } finally {
        await services.close();
      }
    });
};

/**
 * The control plane's reconcilers and what they depend on, constructed by hand on the CLI's
 * adapters (CliContext: the up-to-date data source, the secret store, the driver factory's driver).
 * The directory publisher writes to REDIS_URL's Redis, or to an in-process store nobody reads.
 */
async function reconcileServices(context: CliContext): Promise<{ drift(): ReconcilerService; billing(): BillingReconciler; close(): Promise<void> }> {
  const ds: DataSource = await context.upToDateDataSource();
  const [secrets, driver] = await Promise.all([context.secretStore(), context.driver()]);
  // The CLI serves no HTTP: the listener settings are never read by these services.
  const config: ControlPlaneConfig = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: '' };
  const logger: Logger = createLogger({ name: 'silo-cli', level: 'silent' });
  const clock = () => new Date();
  const kv: KvStore = createKvStore(config.REDIS_URL);
  await kv.ready?.(5_000); // writes before the connection is up fail (and are left to the repair)
  const directory = new DirectoryPublisher(kv, directorySignerFor(config.SILO_DIRECTORY_KEY), (err) => logger.warn({ err }, 'directory cache write failed'));
  const tenants = new TenantRepository(ds);
  const jobs = new JobRepository(ds, config);
  const tiers = new TierCatalog(config, logger);
  const tenantService = new TenantService(tenants, jobs, tiers, directory, config, logger, clock);
  return {
    drift: () => new ReconcilerService(tenants, tenantService, ds, driver, secrets, kv, config, logger),
    billing: () => new BillingReconciler(new BillingService(new WebhookEventRepository(ds), tenants, tenantService, jobs, tiers, config, logger, clock), tenants, tiers, config, logger, clock),
    // The data source, secret store and driver are the context's: runCli closes them.
    close: () => kv.close(),
  };
}

function printBilling(io: CliIo, report: BillingReconcileReport, json: boolean): void {
  if (json) {
    writeLine(io.stdout, JSON.stringify(report));
    return;
  }
  const c = report.checked;
  writeLine(io.stdout, `Checked ${c.subscriptions} Stripe subscriptions and ${c.tenants} billed tenants${c.scheduledCancellations ? ` (${c.scheduledCancellations} with a scheduled cancellation)` : ''}.`);
  if (!report.differences.length) writeLine(io.stdout, 'Billing matches Stripe.');
  for (const d of report.differences) {
    const state = `stripe ${d.stripe ? `${d.stripe.status}/${d.stripe.tier}` : 'unknown'}, silo ${d.tenant ? `${d.tenant.status}/${d.tenant.billingStatus ?? '-'}/${d.tenant.tier}` : 'no tenant'}`;
    writeLine(io.stdout, `  ${d.repaired ? 'repaired' : 'not repaired'}  ${d.kind.padEnd(21)} ${d.subscriptionId}${d.slug ? `  tenant ${d.slug}` : ''}  (${state}; ${d.repair})`);
  }
}

import { randomBytes } from 'node:crypto';
import { createLogger } from '../../common/logger';
import type { ControlPlaneConfig } from '../../control-plane/config';
import { BillingReconciler, BillingReconcileReport } from '../../control-plane/billing/billing-reconciler';
import { ReconcilerService } from '../../control-plane/operations/reconciler.service';
import { startControlPlane } from '../../control-plane/server';
import type { RegisterCommand } from '../command';
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
      // The CLI serves no HTTP: run the control plane's services without a listener or worker.
      const config = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: randomBytes(24).toString('hex'), JOB_WORKER_ENABLED: false } as ControlPlaneConfig;
      const cp = await startControlPlane(config, { logger: createLogger({ name: 'silo-cli', level: 'silent' }), listen: false });
      try {
        if (opts.billing) {
          const report = await cp.app.get(BillingReconciler).run({ repair: true });
          printBilling(io, report, Boolean(opts.json));
          setExitCode(report.differences.some((d) => !d.repaired) ? ExitCode.Failed : ExitCode.Ok);
          return;
        }
        // The same checks as the periodic run (ReconcilerService.run). The one thing this process may
        // not see is the directory cache: without REDIS_URL it lives inside the running `npm start`
        // process (its periodic run checks it); an empty cache of our own would prove nothing.
        const checkDirectory = Boolean(config.REDIS_URL);
        const report = await cp.app.get(ReconcilerService).run({ apply: Boolean(opts.apply), checkDirectory });
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
        await cp.close();
      }
    });
};

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

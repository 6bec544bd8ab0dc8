import { randomBytes } from 'node:crypto';
import { createLogger } from '../../common/logger';
import type { ControlPlaneConfig } from '../../control-plane/config';
import { ReconcilerService } from '../../control-plane/operations/reconciler.service';
import { startControlPlane } from '../../control-plane/server';
import type { RegisterCommand } from '../command';
import { ExitCode } from '../errors';
import { writeLine } from '../io';

/** `silo reconcile [--apply] [--json]`: drift between the control DB, the database server, the secret store and Redis. */
export const registerReconcileCommand: RegisterCommand = (program, { io, context, setExitCode }) => {
  program
    .command('reconcile')
    .description('Report drift (orphan databases/roles/secrets, outdated directory entries, missing databases) and apply safe repairs')
    .option('--apply', 'also apply destructive repairs (drop orphans, suspend tenants whose database is gone)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { apply?: boolean; json?: boolean }) => {
      // The CLI serves no HTTP: run the control plane's services without a listener or worker.
      const config = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: randomBytes(24).toString('hex'), JOB_WORKER_ENABLED: false } as ControlPlaneConfig;
      const cp = await startControlPlane(config, { logger: createLogger({ name: 'silo-cli', level: 'silent' }), listen: false });
      try {
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

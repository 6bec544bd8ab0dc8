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
    .description('Report drift (orphan databases/roles/secrets, missing mappings, missing databases) and apply safe repairs')
    .option('--apply', 'also apply destructive repairs (drop orphans, suspend tenants whose database is gone)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { apply?: boolean; json?: boolean }) => {
      // The CLI serves no HTTP: run the control plane's services without a listener or worker.
      const config = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: randomBytes(24).toString('hex'), JOB_WORKER_ENABLED: false } as ControlPlaneConfig;
      const cp = await startControlPlane(config, { logger: createLogger({ name: 'silo-cli', level: 'silent' }), listen: false });
      try {
        // Without REDIS_URL the directory lives inside the running server's process: not visible from here.
        const checkDirectory = Boolean(config.REDIS_URL);
        const report = await cp.app.get(ReconcilerService).run({ apply: Boolean(opts.apply), checkDirectory });
        if (!checkDirectory && !opts.json) writeLine(io.stderr, 'Directory not checked: REDIS_URL is unset (the in-process cache of a running server is not reachable).');
        const pending = report.drift.filter((d) => !d.repaired);
        if (opts.json) {
          writeLine(io.stdout, JSON.stringify(report));
        } else {
          writeLine(io.stdout, `Checked ${report.checked.tenants} tenants, ${report.checked.databases} tenant databases, ${report.checked.secrets} secrets.`);
          if (!report.drift.length) writeLine(io.stdout, 'No drift.');
          for (const d of report.drift) {
            writeLine(io.stdout, `  ${d.repaired ? 'repaired' : d.destructive ? 'needs --apply' : 'not repaired'}  ${d.kind.padEnd(18)} ${d.object}  (${d.repair})`);
          }
        }
        setExitCode(pending.length ? ExitCode.Failed : ExitCode.Ok);
      } finally {
        await cp.close();
      }
    });
};

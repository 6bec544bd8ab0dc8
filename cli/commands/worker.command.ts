import { randomBytes } from 'node:crypto';
import { createLogger } from '../../common/logger';
import { exitOnSignal } from '../../common/shutdown';
import type { ControlPlaneConfig } from '../../control-plane/config';
import { startControlPlane } from '../../control-plane/server';
import type { RegisterCommand } from '../command';

/**
 * `silo worker`: a job worker process (the ECS worker service runs the same code): claims and runs
 * jobs and the fleet's periodic tasks until SIGTERM/SIGINT, then finishes running jobs and exits 0.
 */
export const registerWorkerCommand: RegisterCommand = (program, { context }) => {
  program
    .command('worker')
    .description('Run a job worker (provisioning, offboarding, rotation jobs and periodic tasks) until SIGTERM or Ctrl-C')
    .action(async () => {
      // No HTTP: the control plane's services and worker without a listener (the token is never used).
      const config = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: randomBytes(24).toString('hex'), JOB_WORKER_ENABLED: true } as ControlPlaneConfig;
      const logger = createLogger({ name: 'job-worker', level: config.LOG_LEVEL });
      const cp = await startControlPlane(config, { logger, listen: false });
      exitOnSignal(async (signal) => {
        logger.info({ signal }, 'job worker stopping: finishing running jobs');
        await cp.close();
        logger.info('job worker stopped');
      }, { say: (line) => logger.warn(line) });
      await new Promise<never>(() => undefined); // runs until a signal
    });
};

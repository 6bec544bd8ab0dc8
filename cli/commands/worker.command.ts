import { randomBytes } from 'node:crypto';
import { createLogger } from '../../common/logger';
import type { ControlPlaneConfig } from '../../control-plane/config';
import { runWorkerUntilSignal } from '../../control-plane/worker-process';
import type { RegisterCommand } from '../command';

/** `silo worker`: a job worker process (the ECS worker service runs it): jobs and the fleet's periodic tasks until SIGTERM/SIGINT. */
export const registerWorkerCommand: RegisterCommand = (program, { context }) => {
  program
    .command('worker')
    .description('Run a job worker (provisioning, offboarding, rotation jobs and periodic tasks) until SIGTERM or Ctrl-C')
    .action(async () => {
      // No HTTP: the control plane's services and worker without a listener (the token is never used).
      const config = { ...context.config, HOST: '127.0.0.1', CONTROL_PLANE_PORT: 0, ADMIN_TOKEN: randomBytes(24).toString('hex') } as ControlPlaneConfig;
      await runWorkerUntilSignal(config, createLogger({ name: 'job-worker', level: config.LOG_LEVEL }));
      await new Promise<never>(() => undefined); // runs until a signal
    });
};

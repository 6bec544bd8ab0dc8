import type { Logger } from '../common/logger';
import { exitOnSignal } from '../common/shutdown';
import type { ControlPlaneConfig } from './config';
import { startControlPlane } from './server';

/**
 * A job worker process (`silo worker`, `dist/scripts/worker.js`, the ECS worker service): the
 * control plane's services and worker without an HTTP listener, until SIGTERM/SIGINT; then running
 * jobs finish (or are handed back) and the process exits 0.
 */
export async function runWorkerUntilSignal(config: ControlPlaneConfig, logger: Logger): Promise<void> {
  const cp = await startControlPlane({ ...config, JOB_WORKER_ENABLED: true }, { logger, listen: false });
  exitOnSignal(async (signal) => {
    logger.info({ signal }, 'job worker stopping: finishing running jobs');
    await cp.close();
    logger.info('job worker stopped');
  }, { say: (line) => logger.warn(line) });
}

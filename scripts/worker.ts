import 'reflect-metadata';
import { isSiloError } from '../common/errors';
import { exitOnSignal } from '../common/shutdown';
import { createLogger } from '../common/logger';
import { loadControlPlaneConfig } from '../control-plane/config';
import { startControlPlane } from '../control-plane/server';

/** The job worker as its own process (ECS service): same code and config as the control plane, no HTTP listener. */
async function main(): Promise<void> {
  const config = loadControlPlaneConfig({ ...process.env, JOB_WORKER_ENABLED: 'true' });
  const logger = createLogger({ name: 'job-worker', level: config.LOG_LEVEL });
  const cp = await startControlPlane(config, { logger, listen: false });
  exitOnSignal(async (signal) => {
    logger.info({ signal }, 'job worker stopping: finishing running jobs');
    await cp.close();
    logger.info('job worker stopped');
  }, { say: (line) => logger.warn(line) });
}

main().catch((err) => {
  process.stderr.write(`${isSiloError(err) ? err.message : `worker failed to start: ${(err as Error).message}`}\n`);
  process.exit(1);
});

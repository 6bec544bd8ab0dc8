import 'reflect-metadata';
import { createLogger } from '../common/logger';
import { isSiloError } from '../common/errors';
import { exitOnSignal } from '../common/shutdown';
import { loadControlPlaneConfig } from './config';
import { startControlPlane } from './server';

/** Composition root of the control plane deployable (HTTP API + job worker unless JOB_WORKER_ENABLED=false). */
async function main(): Promise<void> {
  const config = loadControlPlaneConfig(process.env);
  const logger = createLogger({ name: 'control-plane', level: config.LOG_LEVEL });
  const cp = await startControlPlane(config, { logger });
  logger.info({ url: cp.url, worker: Boolean(cp.worker) }, 'control plane listening');
  exitOnSignal(async (signal) => {
    logger.info({ signal }, 'shutting down');
    await cp.close();
    logger.info('control plane stopped');
  }, { say: (line) => logger.warn(line) });
}

main().catch((err) => {
  process.stderr.write(`${isSiloError(err) ? err.message : `control plane failed to start: ${(err as Error).message}`}\n`);
  process.exit(1);
});

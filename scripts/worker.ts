import 'reflect-metadata';
import { isSiloError } from '../common/errors';
import { createLogger } from '../common/logger';
import { loadControlPlaneConfig } from '../control-plane/config';
import { runWorkerUntilSignal } from '../control-plane/worker-process';

/** The job worker as its own process (same code and config as the control plane, no HTTP listener); `silo worker` does the same. */
async function main(): Promise<void> {
  const config = loadControlPlaneConfig({ ...process.env, JOB_WORKER_ENABLED: 'true' });
  await runWorkerUntilSignal(config, createLogger({ name: 'job-worker', level: config.LOG_LEVEL }));
}

main().catch((err) => {
  process.stderr.write(`${isSiloError(err) ? err.message : `worker failed to start: ${(err as Error).message}`}\n`);
  process.exit(1);
});

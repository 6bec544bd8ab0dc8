import { isSiloError } from '../common/errors';
import { createLogger } from '../common/logger';
import { loadRuntimeConfig } from './config';
import { startTenantRuntime } from './server';

/** Composition root of a standalone runtime replica: `node dist/tenant-runtime/main.js`. */
async function main(): Promise<void> {
  const config = loadRuntimeConfig(process.env);
  const logger = createLogger({ name: 'tenant-runtime', level: config.LOG_LEVEL });
  const runtime = await startTenantRuntime(config, { logger });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    runtime.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`tenant runtime failed to start: ${isSiloError(err) ? err.message : (err as Error).message}\n`);
  process.exit(1);
});

import { isSiloError } from '../common/errors';
import { exitOnSignal } from '../common/shutdown';
import { createLogger } from '../common/logger';
import { loadRuntimeConfig } from './config';
import { startTenantRuntime } from './server';

/** Composition root of a standalone runtime replica: `node dist/tenant-runtime/main.js`. */
async function main(): Promise<void> {
  const config = loadRuntimeConfig(process.env);
  const logger = createLogger({ name: 'tenant-runtime', level: config.LOG_LEVEL });
  const runtime = await startTenantRuntime(config, { logger });
  exitOnSignal(async (signal) => {
    logger.info({ signal }, 'draining');
    await runtime.close();
  }, { timeoutMs: config.RUNTIME_SHUTDOWN_TIMEOUT_MS + 15_000, say: (line) => logger.warn(line) });
}

main().catch((err: unknown) => {
  process.stderr.write(`tenant runtime failed to start: ${isSiloError(err) ? err.message : (err as Error).message}\n`);
  process.exit(1);
});

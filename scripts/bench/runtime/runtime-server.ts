import pino from 'pino';
import { createLogger } from '../../../common/logger';
import { loadRuntimeConfig } from '../../../tenant-runtime/config';
import { startTenantRuntime } from '../../../tenant-runtime/server';

/**
 * The tenant runtime as the benchmark runs it: its own process (so its RSS is its own), default
 * settings unless the environment says otherwise, the access log on (written to /dev/null).
 * Prints its URL on stdout; SIGTERM drains and exits.
 */
async function main(): Promise<void> {
  const config = loadRuntimeConfig(process.env);
  const logger = createLogger({ name: 'bench-runtime', level: config.LOG_LEVEL, destination: pino.destination({ dest: '/dev/null', sync: true }) });
  const rt = await startTenantRuntime(config, { logger, kvPrefix: process.env.BENCH_KV_PREFIX });
  process.stdout.write(`${JSON.stringify({ url: rt.url, metricsUrl: rt.metricsUrl })}\n`);
  process.on('SIGTERM', () => void rt.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench runtime failed: ${(err as Error).message}\n`);
  process.exit(1);
});

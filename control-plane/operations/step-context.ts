import type { DriverContext, DriverTenant } from '../../provisioning/provisioning-driver';
import { JobRepository } from '../jobs/job.repository';

/** A DriverContext whose steps are recorded in provisioning_steps: on retry, done steps replay their result. */
export async function recordedStepContext(
  jobs: JobRepository,
  tenant: DriverTenant,
  operation: string,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<DriverContext> {
  const done = await jobs.completedSteps(tenant.id, operation);
  return {
    tenant,
    log,
    signal,
    step: async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      if (done.has(name)) {
        log(`${operation}/${name}: already done`);
        return done.get(name) as T;
      }
      if (signal?.aborted) throw new Error('aborted');
      const started = Date.now();
      const result = await fn();
      await jobs.recordStep(tenant.id, operation, name, result ?? null);
      done.set(name, result);
      log(`${operation}/${name}: done in ${Date.now() - started} ms`);
      return result;
    },
  };
}

import { Job } from './job.entity';

export interface JobContext {
  job: Job;
  log(line: string): void;
  signal: AbortSignal;
}

/** One per job type. `onExhausted` runs once when the last attempt fails. */
export interface JobHandler {
  run(ctx: JobContext): Promise<void>;
  onExhausted?(job: Job, error: Error): Promise<void>;
}

/**
 * A worker's own view of how long it still holds a job's lease, in milliseconds on the worker's
 * clock. Pure: the time of each event comes in as an argument.
 *
 * The deadline is counted from when a renewal was *sent*, not when its answer came back: the
 * database set `locked_until = now() + lease` at some moment after the send, so the real lease
 * ends no earlier than `sentAt + lease` (whatever the clocks of the two machines say). A renewal
 * that failed or never answered moves nothing: the lease is held only until the last deadline
 * that a successful renewal proved.
 */
export class JobLease {
  private deadline: number;
  private lostReason: string | null = null;

  constructor(claimedAt: number, private readonly leaseMs: number) {
    this.deadline = claimedAt + leaseMs;
  }

  /** The renewal sent at `sentAt` succeeded. */
  renewed(sentAt: number): void {
    if (this.lostReason) return;
    this.deadline = Math.max(this.deadline, sentAt + this.leaseMs);
  }

  /** The database said this worker no longer holds the job (another worker took it). */
  taken(): void {
    this.lostReason ??= 'job lease lost: another worker holds the job';
  }

  /** The lease is gone at `now`: taken, or not renewed before its deadline. Returns why, else null. */
  lost(now: number): string | null {
    if (!this.lostReason && now >= this.deadline) this.lostReason = 'job lease lost: it could not be renewed before it expired';
    return this.lostReason;
  }

  /** Milliseconds left at `now` (0 once lost). */
  remainingMs(now: number): number {
    return this.lost(now) ? 0 : this.deadline - now;
  }
}

import { JobLease } from './job-lease';

describe('JobLease', () => {
  it('is held until one lease after the claim when no renewal succeeds', () => {
    const lease = new JobLease(1_000, 3_000);
    expect(lease.lost(3_999)).toBeNull();
    expect(lease.remainingMs(3_999)).toBe(1);
    expect(lease.lost(4_000)).toBe('job lease lost: it could not be renewed before it expired');
    expect(lease.remainingMs(4_000)).toBe(0);
  });

  it('counts a successful renewal from when it was sent, not when it answered', () => {
    const lease = new JobLease(0, 3_000);
    lease.renewed(1_000); // answered late, say at 2 900: the database's lease still ends after 4 000
    expect(lease.remainingMs(2_900)).toBe(1_100);
    expect(lease.lost(3_999)).toBeNull();
    expect(lease.lost(4_000)).not.toBeNull();
  });

  it('never moves the deadline back (a renewal sent before a later one answered last)', () => {
    const lease = new JobLease(0, 3_000);
    lease.renewed(2_000);
    lease.renewed(1_000);
    expect(lease.remainingMs(4_500)).toBe(500);
  });

  it('stays lost once lost: a renewal that succeeds after the deadline does not bring it back', () => {
    const lease = new JobLease(0, 1_000);
    expect(lease.lost(1_000)).not.toBeNull();
    lease.renewed(1_200);
    expect(lease.lost(1_300)).toBe('job lease lost: it could not be renewed before it expired');
  });

  it('is lost at once when the database says another worker holds the job', () => {
    const lease = new JobLease(0, 60_000);
    lease.taken();
    expect(lease.lost(1)).toBe('job lease lost: another worker holds the job');
    expect(lease.remainingMs(1)).toBe(0);
  });
});

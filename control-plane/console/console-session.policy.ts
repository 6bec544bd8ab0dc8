/** Whether a console session still counts, from its times alone (time passed in; no I/O). */
export type SessionState = 'live' | 'ended' | 'idle' | 'expired';

export interface SessionTimes {
  lastSeenAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
}

/** `ended`: signed out; `expired`: past the absolute timeout; `idle`: no request for `idleMs`. */
export function sessionState(s: SessionTimes, now: Date, idleMs: number): SessionState {
  if (s.endedAt) return 'ended';
  if (now.getTime() >= s.expiresAt.getTime()) return 'expired';
  if (now.getTime() - s.lastSeenAt.getTime() >= idleMs) return 'idle';
  return 'live';
}

/** last_seen_at is written at most this often per session: an idle timeout of minutes does not need every request's write. */
export const TOUCH_EVERY_MS = 15_000;

export function needsTouch(s: SessionTimes, now: Date): boolean {
  return now.getTime() - s.lastSeenAt.getTime() >= TOUCH_EVERY_MS;
}

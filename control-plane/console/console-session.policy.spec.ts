import { needsTouch, sessionState, TOUCH_EVERY_MS } from './console-session.policy';

const t = (ms: number) => new Date(1_700_000_000_000 + ms);
const IDLE = 30 * 60_000;

describe('console session policy', () => {
  const s = { lastSeenAt: t(0), expiresAt: t(12 * 3600_000), endedAt: null };

  it('is live until the idle timeout passes without a request', () => {
    expect(sessionState(s, t(IDLE - 1), IDLE)).toBe('live');
    expect(sessionState(s, t(IDLE), IDLE)).toBe('idle');
  });

  it('expires at the absolute timeout even when used a moment ago', () => {
    const busy = { ...s, lastSeenAt: t(12 * 3600_000 - 1000) };
    expect(sessionState(busy, t(12 * 3600_000 - 1), IDLE)).toBe('live');
    expect(sessionState(busy, t(12 * 3600_000), IDLE)).toBe('expired');
  });

  it('is ended once signed out, whatever the times', () => {
    expect(sessionState({ ...s, endedAt: t(1) }, t(2), IDLE)).toBe('ended');
  });

  it('writes last_seen_at at most every TOUCH_EVERY_MS', () => {
    expect(needsTouch(s, t(TOUCH_EVERY_MS - 1))).toBe(false);
    expect(needsTouch(s, t(TOUCH_EVERY_MS))).toBe(true);
  });
});

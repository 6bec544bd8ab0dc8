import { decideStorage, STORAGE_POLICY, StorageDecision } from './storage-quota.policy';

const MB = 1024 * 1024;
const quota = 100 * MB;
const at = (usedMb: number, state: { frozen?: boolean; warned?: boolean } = {}) =>
  decideStorage({ usedBytes: usedMb * MB, quotaBytes: quota, frozen: state.frozen ?? false, warned: state.warned ?? false });

describe('decideStorage', () => {
  it('does nothing well under the quota', () => {
    expect(at(0)).toBe(StorageDecision.None);
    expect(at(79.9)).toBe(StorageDecision.None);
  });

  it('warns once at 80% of the quota, not again while it stays there', () => {
    expect(at(80)).toBe(StorageDecision.Warn);
    expect(at(99, { warned: true })).toBe(StorageDecision.None);
    expect(at(100, { warned: true })).toBe(StorageDecision.None); // at the quota is not past it
  });

  it('freezes past the quota, warned or not', () => {
    expect(at(100.01)).toBe(StorageDecision.Freeze);
    expect(at(500, { warned: true })).toBe(StorageDecision.Freeze);
  });

  it('keeps a frozen tenant frozen until it is under 90% of the quota (hysteresis)', () => {
    expect(at(120, { frozen: true, warned: true })).toBe(StorageDecision.None);
    expect(at(99, { frozen: true, warned: true })).toBe(StorageDecision.None);
    expect(at(90, { frozen: true, warned: true })).toBe(StorageDecision.None);
    expect(at(89.9, { frozen: true, warned: true })).toBe(StorageDecision.Unfreeze);
    expect(at(1, { frozen: true })).toBe(StorageDecision.Unfreeze);
  });

  it('unfreezes when the quota grows (a bigger tier) even though usage did not shrink', () => {
    expect(decideStorage({ usedBytes: 120 * MB, quotaBytes: 1024 * MB, frozen: true, warned: true })).toBe(StorageDecision.Unfreeze);
  });

  it('re-arms the warning only below 70%, so usage hovering at 80% warns once', () => {
    expect(at(75, { warned: true })).toBe(StorageDecision.None);
    expect(at(69.9, { warned: true })).toBe(StorageDecision.Rearm);
    expect(at(69.9)).toBe(StorageDecision.None);
  });

  it('walks a tenant through fill, freeze, truncate and refill', () => {
    let state = { frozen: false, warned: false };
    const seen: StorageDecision[] = [];
    for (const usedMb of [10, 85, 90, 101, 150, 95, 30, 10, 85]) {
      const d = at(usedMb, state);
      seen.push(d);
      if (d === StorageDecision.Freeze) state = { frozen: true, warned: true };
      if (d === StorageDecision.Unfreeze) state = { ...state, frozen: false };
      if (d === StorageDecision.Warn) state = { ...state, warned: true };
      if (d === StorageDecision.Rearm) state = { ...state, warned: false };
    }
    expect(seen).toEqual(['none', 'warn', 'none', 'freeze', 'none', 'none', 'unfreeze', 'rearm', 'warn']);
  });

  it('refuses measurements and quotas that make no sense', () => {
    expect(() => decideStorage({ usedBytes: -1, quotaBytes: quota, frozen: false, warned: false })).toThrow(RangeError);
    expect(() => decideStorage({ usedBytes: Number.NaN, quotaBytes: quota, frozen: false, warned: false })).toThrow(RangeError);
    expect(() => decideStorage({ usedBytes: 1, quotaBytes: 0, frozen: false, warned: false })).toThrow(RangeError);
    expect(() => decideStorage({ usedBytes: 1, quotaBytes: Number.POSITIVE_INFINITY, frozen: false, warned: false })).toThrow(RangeError);
    expect(() => decideStorage({ usedBytes: 1, quotaBytes: quota, frozen: false, warned: false }, { ...STORAGE_POLICY, rearmRatio: 0.9 })).toThrow(RangeError);
  });
});

import { sharedCheck } from './readiness';

describe('sharedCheck', () => {
  it('runs one check for every caller within the interval, shares an in-flight one, and checks again after it', async () => {
    let runs = 0;
    let clock = 0;
    let release: () => void = () => undefined;
    const check = sharedCheck(() => new Promise<number>((r) => { runs++; release = () => r(runs); }), 1_000, () => clock);
    const flood = Array.from({ length: 100 }, () => check());
    release();
    expect(await Promise.all(flood)).toEqual(Array(100).fill(1));
    clock = 999;
    expect(await check()).toBe(1);
    clock = 1_000;
    const next = check();
    release();
    expect(await next).toBe(2);
    expect(runs).toBe(2);
  });

  it('does not keep serving a check that failed', async () => {
    let fail = true;
    const check = sharedCheck(async () => {
      if (fail) throw new Error('down');
      return 'up';
    }, 60_000, () => 0);
    await expect(check()).rejects.toThrow('down');
    fail = false;
    expect(await check()).toBe('up');
  });
});

import { BackendReaper, BackendRef, BackendTerminator, dueWatches, reapDelayMs } from './backend-terminator';

/** A server whose backends exit after being signalled `exitAfter` times (Infinity: never); `down` fails every ask. */
class FakeServer implements BackendTerminator {
  readonly asks: number[][] = [];
  readonly signals = new Map<number, number>();
  down = false;

  constructor(private readonly exitAfter: Record<number, number>) {}

  async reap(_server: { host: string; port: number }, backends: ReadonlyArray<BackendRef>): Promise<Set<number>> {
    this.asks.push(backends.map((b) => b.pid));
    if (this.down) throw new Error('connection refused');
    const present = new Set<number>();
    for (const b of backends) {
      const n = this.signals.get(b.pid) ?? 0;
      if (n >= (this.exitAfter[b.pid] ?? 1)) continue; // gone
      present.add(b.pid);
      this.signals.set(b.pid, n + 1);
    }
    return present;
  }

  async close(): Promise<void> {}
}

const ref = (pid: number, host = 'db'): BackendRef => ({ host, port: 5432, pid, role: 't_x' });

describe('reapDelayMs', () => {
  it('asks at once, then backs off from 25 ms doubling to a 2 s cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 20].map((r) => reapDelayMs(r))).toEqual([0, 25, 50, 100, 200, 400, 800, 1600, 2000, 2000]);
  });
});

describe('dueWatches', () => {
  it('splits the due from the rest and says when the next one is due', () => {
    const r = dueWatches([{ due: 5 }, { due: 12 }, { due: 10 }, { due: 9 }], 10);
    expect(r.due).toEqual([{ due: 5 }, { due: 10 }, { due: 9 }]);
    expect(r.next).toBe(12);
    expect(dueWatches([], 0).next).toBeNull();
  });
});

describe('BackendReaper', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('resolves a watch only once the server no longer shows the backend, and asks about one server in one query', async () => {
    const server = new FakeServer({ 1: 1, 2: 3 });
    const reaper = new BackendReaper(server);
    const gone: number[] = [];
    void reaper.watch(ref(1)).then(() => gone.push(1));
    void reaper.watch(ref(2)).then(() => gone.push(2));
    await jest.advanceTimersByTimeAsync(0);
    expect(server.asks).toEqual([[1, 2]]); // both signalled in one batch
    expect(gone).toEqual([]);
    await jest.advanceTimersByTimeAsync(25);
    expect(gone).toEqual([1]); // 1 exited after one signal; 2 is signalled again
    expect(reaper.pending).toBe(1);
    await jest.advanceTimersByTimeAsync(50);
    expect(gone).toEqual([1]);
    await jest.advanceTimersByTimeAsync(100);
    expect(gone).toEqual([1, 2]);
    expect(server.signals.get(2)).toBe(3);
    expect(reaper.pending).toBe(0);
  });

  it('keeps a backend it cannot ask about (server down) and asks again with backoff until it can', async () => {
    const server = new FakeServer({ 7: 1 });
    server.down = true;
    const errors: number[] = [];
    const reaper = new BackendReaper(server, { onError: (_e, _s, pending) => errors.push(pending) });
    let done = false;
    void reaper.watch(ref(7)).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(10_000);
    expect(done).toBe(false);
    expect(reaper.pending).toBe(1);
    // 0, 25, 50, ... capped at 2 s: a handful of asks in 10 s, not a busy loop.
    expect(server.asks.length).toBeGreaterThan(5);
    expect(server.asks.length).toBeLessThan(15);
    expect(errors.every((n) => n === 1)).toBe(true);
    server.down = false;
    await jest.advanceTimersByTimeAsync(2_100);
    expect(done).toBe(false); // signalled now, still present at that look
    await jest.advanceTimersByTimeAsync(2_100);
    expect(done).toBe(true);
  });

  it('asks each server separately, and a second watch of the same pid shares the first', async () => {
    const server = new FakeServer({});
    const reaper = new BackendReaper(server);
    const a = reaper.watch(ref(1, 'a'));
    const b = reaper.watch(ref(1, 'b'));
    const again = reaper.watch(ref(1, 'a'));
    await jest.advanceTimersByTimeAsync(0);
    expect(server.asks.length).toBe(2);
    await jest.advanceTimersByTimeAsync(100);
    await expect(Promise.all([a, b, again])).resolves.toEqual([undefined, undefined, undefined]);
    expect(reaper.pending).toBe(0);
  });
});

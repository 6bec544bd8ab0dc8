/**
 * SIGTERM/SIGINT handling for a deployable's composition root: the first signal runs `stop`
 * (drain, close pools, Redis, servers) and exits 0 when it resolves, 1 if it throws or takes
 * longer than `timeoutMs`; a second signal exits 1 at once. Nest's own shutdown hooks are not
 * used: they re-send the signal after closing the app, which killed the process (exit 130/143)
 * before Redis, the driver, the pools and the embedded PostgreSQL were closed.
 */
export function exitOnSignal(stop: (signal: NodeJS.Signals) => Promise<void>, opts: { timeoutMs?: number; say?: (line: string) => void } = {}): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      opts.say?.(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    const timer = setTimeout(() => {
      opts.say?.(`shutdown took longer than ${opts.timeoutMs} ms: exiting`);
      process.exit(1);
    }, opts.timeoutMs ?? 30_000);
    timer.unref();
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        opts.say?.(`shutdown failed: ${(err as Error)?.message ?? String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

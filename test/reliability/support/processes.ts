import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..', '..');

/** Entry points, as deployed: the compiled JavaScript in dist/. */
export const ENTRY = {
  controlPlane: join(REPO_ROOT, 'dist', 'control-plane', 'main.js'),
  worker: join(REPO_ROOT, 'dist', 'scripts', 'worker.js'),
  runtime: join(REPO_ROOT, 'dist', 'tenant-runtime', 'main.js'),
  cli: join(REPO_ROOT, 'bin', 'silo.js'),
};

/** Every child this test file started and has not seen exit: killed in afterAll and, at worst, on exit. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Kills whatever is still running (afterAll safety net). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  })));
}

/** The environment a service gets: the config we pass and just enough of ours to run node. */
export function baseEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k] as string;
  return { ...env, ...extra };
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One service process (control plane, worker, runtime) that can be started, SIGKILLed and started
 * again with the same environment. Keeps the last lines of its output for failure messages.
 */
export class ServiceProcess {
  child: ChildProcess | null = null;
  starts = 0;
  kills = 0;
  private tail: string[] = [];
  /** Lines seen since the first spawn (the tail keeps the last ones): absolute positions for waitForLine. */
  private linesSeen = 0;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });

  constructor(readonly name: string, readonly entry: string, readonly env: Record<string, string>, private readonly ready: (p: ServiceProcess) => Promise<void>, readonly args: string[] = []) {}

  get pid(): number {
    if (!this.child?.pid) throw new Error(`${this.name} is not running`);
    return this.child.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process without waiting for it to be ready. */
  spawn(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const child = spawn(process.execPath, [this.entry, ...this.args], { cwd: REPO_ROOT, env: baseEnv(this.env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts++;
    live.add(child);
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.tail.push(line.slice(0, 2_000));
        this.linesSeen++;
      }
      if (this.tail.length > 300) this.tail.splice(0, this.tail.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise<ExitInfo>((resolve) => child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }));
  }

  /** Spawns and waits until the service answers (or fails with its last output). */
  async start(timeoutMs = 30_000): Promise<void> {
    this.spawn();
    const child = this.child as ChildProcess;
    const died = this.exited.then((e) => {
      throw new Error(`${this.name} exited during start-up (code ${e.code}, signal ${e.signal}):\n${this.output(30)}`);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output(30)}`)), timeoutMs);
    });
    try {
      await Promise.race([this.ready(this), died, timeout]);
    } finally {
      clearTimeout(timer);
      died.catch(() => undefined);
    }
    if (this.child !== child || !this.running) throw new Error(`${this.name} died while starting`);
  }

  /** SIGKILL: no shutdown hooks, no lease release, in-flight transactions cut. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    if (signal === 'SIGKILL') this.kills++;
    this.child?.kill(signal);
    return this.exited;
  }

  /** SIGTERM with a grace period, then SIGKILL. */
  async stop(graceMs = 10_000): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }

  /** Resident memory of the process, from /proc (kB). */
  rssKb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }

  output(lines = 50): string {
    return this.tail.slice(-lines).join('\n');
  }

  /** Waits until a line of output matches (the worker has no HTTP port to poll). */
  async waitForLine(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    // Only lines printed from now on: not the previous run's (a worker killed right after starting
    // ends on the very line we wait for), and robust to the tail being trimmed meanwhile.
    const from = this.linesSeen;
    const deadline = Date.now() + timeoutMs;
    const startedChild = this.child;
    while (Date.now() < deadline) {
      if (this.child !== startedChild || !this.running) throw new Error(`${this.name} is not running`);
      const fresh = this.linesSeen - from;
      if (fresh > 0 && this.tail.slice(-Math.min(fresh, this.tail.length)).some((l) => pattern.test(l))) return;
      await sleep(25);
    }
    throw new Error(`${this.name}: no output line matched ${pattern} within ${timeoutMs} ms`);
  }
}

/** Ready once GET <url>/health/live answers 200. */
export function httpReady(url: () => string): (p: ServiceProcess) => Promise<void> {
  return async (p) => {
    for (;;) {
      if (!p.running) return;
      try {
        const res = await fetch(`${url()}/health/live`, { signal: AbortSignal.timeout(1_000) });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(40);
    }
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node bin/silo.js …` as its own process; `onSpawn` gets the child (to kill it mid-way). */
export function runCli(args: string[], env: Record<string, string>, opts: { onSpawn?: (c: ChildProcess) => void; timeoutMs?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [ENTRY.cli, ...args], { cwd: REPO_ROOT, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  opts.onSpawn?.(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  return new Promise((resolve) => child.once('close', (code, signal) => {
    clearTimeout(timer);
    live.delete(child);
    resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started });
  }));
}

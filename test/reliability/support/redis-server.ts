import { ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from '../../support/runtime-fixtures';
import { sleep } from './processes';

const owned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of owned) c.kill('SIGKILL');
});

/** PING over a raw socket: true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * A redis-server this test file owns, on loopback, without persistence: the services' directory
 * cache and invalidation bus, private to the file (the services take no key prefix from the
 * environment) and killable to inject a cache outage. Restarts reuse the port.
 */
export class OwnedRedis {
  private child: ChildProcess | null = null;
  restarts = 0;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnedRedis> {
    const r = new OwnedRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
    owned.add(child);
    child.once('exit', () => owned.delete(child));
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (await ping(this.port)) return;
      if (!this.running) break;
      await sleep(30);
    }
    throw new Error(`redis-server did not start on 127.0.0.1:${this.port}`);
  }

  /** SIGKILL: connections drop at once, every key is lost (no persistence). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
    this.restarts++;
  }
}

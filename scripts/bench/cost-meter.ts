/**
 * What one request costs the server, for benchmarks that run the server in-process with the load on
 * a worker thread: CPU time of the main thread only (Linux: /proc/self/task/<pid>/stat, so the load
 * generator's thread is not counted; elsewhere process.cpuUsage(), which counts it), the SQL
 * statements (`pg` Client#query calls) and round trips, and the Redis commands issued meanwhile.
 * A round trip: a statement sent while its connection has none outstanding. node-postgres waits for
 * each answer before sending the next statement, except in pipeline mode, where a statement sent
 * while others are outstanding shares their round trip.
 */
import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { Client } from 'pg';

const CLOCK_TICK_US = 10_000; // USER_HZ = 100 on Linux

export interface Cost {
  cpuUs: number;
  sqlStatements: number;
  sqlRoundTrips: number;
  redisCommands: number;
}

let sql = 0;
let roundTrips = 0;
let redis = 0;
const outstanding = new WeakMap<Client, number>();
let installed = false;

/** Counts every `pg` query and ioredis command of this process from now on. */
export function installCounters(): void {
  if (installed) return;
  installed = true;
  const query = Client.prototype.query;
  Client.prototype.query = function (this: Client, ...args: unknown[]) {
    sql++;
    const inFlight = outstanding.get(this) ?? 0;
    if (!(this.pipeline && inFlight > 0)) roundTrips++;
    outstanding.set(this, inFlight + 1);
    const done = () => outstanding.set(this, (outstanding.get(this) ?? 1) - 1);
    const res = (query as (...a: unknown[]) => unknown).apply(this, args);
    if (res && typeof (res as Promise<unknown>).then === 'function') (res as Promise<unknown>).then(done, done);
    else done();
    return res;
  } as typeof Client.prototype.query;
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<typeof send>) {
    redis++;
    return send.apply(this, args);
  };
}

function mainThreadCpuUs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US; // utime, stime (fields 14, 15)
  } catch {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
}

/** Runs `work` and returns the server's cost of it divided by `n` requests. */
export async function costPer(n: number, work: () => Promise<unknown>): Promise<Cost> {
  const c0 = mainThreadCpuUs();
  const s0 = sql;
  const t0 = roundTrips;
  const r0 = redis;
  await work();
  return { cpuUs: (mainThreadCpuUs() - c0) / n, sqlStatements: (sql - s0) / n, sqlRoundTrips: (roundTrips - t0) / n, redisCommands: (redis - r0) / n };
}

/** True when CPU time is read per thread (Linux), false when it includes every thread. */
export const perThreadCpu = (() => {
  try {
    readFileSync(`/proc/self/task/${process.pid}/stat`);
    return true;
  } catch {
    return false;
  }
})();

/**
 * A CPU profile of this process's main thread around some work (the inspector's sampling profiler),
 * written as a .cpuprofile (Chrome DevTools, speedscope) and summarised: self time by function and
 * by where the code lives (a package under node_modules, a repo folder, node's own internals).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Busy samples' share of all samples (idle and GC excluded from `byFunction`/`byPlace` shares). */
  busyShare: number;
  byPlace: Array<{ name: string; share: number }>;
  byFunction: Array<{ name: string; share: number }>;
  /** Share of busy time spent under (inclusive) frames of each of these places. */
  inclusive: Array<{ name: string; share: number }>;
}

function post<T>(s: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => s.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Runs `work` under the profiler (sampling every `intervalUs`), writes `file`, returns the summary. */
export async function profile(file: string, intervalUs: number, work: () => Promise<unknown>): Promise<ProfileSummary> {
  const s = new Session();
  s.connect();
  try {
    await post(s, 'Profiler.enable');
    await post(s, 'Profiler.setSamplingInterval', { interval: intervalUs });
    await post(s, 'Profiler.start');
    await work();
    const { profile: p } = await post<{ profile: Profile }>(s, 'Profiler.stop');
    writeFileSync(file, JSON.stringify(p));
    return summarise(p);
  } finally {
    s.disconnect();
  }
}

/** Where a frame's code lives: `pg`, `typeorm`, `control-plane/billing`, `node:internal`, … */
export function placeOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + '/dist/'.length).split('/').slice(0, 2).join('/');
  return url;
}

export function summarise(p: Profile): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  for (const id of p.samples ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
  const total = [...hits.values()].reduce((a, b) => a + b, 0) || 1;
  let busy = 0;
  const place = new Map<string, number>();
  const fn = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, count] of hits) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') continue;
    busy += count;
    const where = placeOf(url, functionName);
    place.set(where, (place.get(where) ?? 0) + count);
    const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + count);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur);
      if (!f) break;
      const w = placeOf(f.callFrame.url, f.callFrame.functionName);
      if (!seen.has(w)) {
        seen.add(w);
        incl.set(w, (incl.get(w) ?? 0) + count);
      }
    }
  }
  const top = (m: Map<string, number>, k: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, c]) => ({ name, share: c / (busy || 1) }));
  return { busyShare: busy / total, byPlace: top(place, 25), byFunction: top(fn, 40), inclusive: top(incl, 30) };
}

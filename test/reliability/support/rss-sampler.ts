import { readFileSync } from 'node:fs';

/** Resident memory of a process from /proc/<pid>/status, in kB: now (VmRSS) and its peak since start (VmHWM). */
export interface ProcMemory {
  rssKb: number;
  hwmKb: number;
}

/** null when the process is gone (or /proc has no such pid). */
export function procMemory(pid: number): ProcMemory | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

export interface RssSummary {
  samples: number;
  /** Reads that found no process: the process was gone at that instant. */
  missed: number;
  maxRssKb: number;
  /** VmHWM at the last successful read: the kernel's own peak, which catches spikes between samples. */
  hwmKb: number;
  /** Largest gap between two successful reads (the test process's event loop may be busy). */
  maxGapMs: number;
  /** [ms since start, VmRSS kB] every ~second, for the figures. */
  series: Array<[number, number]>;
}

/**
 * Samples a process's VmRSS (and VmHWM) on an interval. Runs in the test process: a busy event
 * loop delays samples, so maxGapMs is reported and VmHWM covers whatever fell between them.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();
  private last = 0;
  private summary: RssSummary = { samples: 0, missed: 0, maxRssKb: 0, hwmKb: 0, maxGapMs: 0, series: [] };

  constructor(private readonly pid: number, private readonly intervalMs = 100) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  stop(): RssSummary {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return { ...this.summary, series: [...this.summary.series] };
  }

  private sample(): void {
    const m = procMemory(this.pid);
    const now = Date.now();
    const s = this.summary;
    if (!m) {
      s.missed++;
      return;
    }
    if (this.last) s.maxGapMs = Math.max(s.maxGapMs, now - this.last);
    this.last = now;
    s.samples++;
    s.maxRssKb = Math.max(s.maxRssKb, m.rssKb);
    s.hwmKb = Math.max(s.hwmKb, m.hwmKb);
    const at = now - this.started;
    const prev = s.series[s.series.length - 1];
    if (!prev || at - prev[0] >= 1_000) s.series.push([at, m.rssKb]);
  }
}

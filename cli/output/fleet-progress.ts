import { SingleBar } from 'cli-progress';
import type { FleetEvents, FleetPlan, TemplateReport, TenantReport } from '../../migrations/fleet-runner';
import { CliIo, writeLine } from '../io';
import { tenantLine, templateLine } from './migrate-report';

export type ProgressMode = 'bar' | 'lines' | 'quiet';

/** A bar with ETA on a terminal (stderr), one line per tenant otherwise (CI logs), nothing for --json. */
export function progressMode(io: CliIo, json: boolean): ProgressMode {
  if (json) return 'quiet';
  return io.stderr.isTTY ? 'bar' : 'lines';
}

export interface FleetProgress extends FleetEvents {
  /** Stops the bar (before a prompt or the summary). */
  pause(): void;
}

export function fleetProgress(io: CliIo, mode: ProgressMode): FleetProgress {
  let bar: SingleBar | null = null;
  let total = 0;
  let failed = 0;
  const pause = () => {
    bar?.stop();
    bar = null;
  };
  if (mode === 'quiet') return { pause };
  return {
    pause,
    planned(plan: FleetPlan) {
      total = plan.toCheck;
      const parts = [`${plan.selected} tenant${plan.selected === 1 ? '' : 's'} selected`, `${plan.toCheck} to check`];
      if (plan.atTargetByMirror) parts.push(`${plan.atTargetByMirror} already at ${plan.target} (control database)`);
      if (plan.notEligible) parts.push(`${plan.notEligible} not eligible`);
      if (plan.canary) parts.push(`canary: first ${plan.canary}`);
      writeLine(io.stdout, `Target version ${plan.target ?? '(none)'}: ${parts.join(', ')}.`);
    },
    templateFinished(report: TemplateReport) {
      writeLine(io.stdout, templateLine(report));
    },
    tenantFinished(report: TenantReport, done: number) {
      if (report.outcome === 'failed' || report.outcome === 'drift' || report.outcome === 'locked') failed++;
      if (mode === 'lines') {
        writeLine(io.stdout, `[${String(done).padStart(String(total).length)}/${total}] ${tenantLine(report)}`);
        return;
      }
      if (!bar) {
        bar = new SingleBar({
          format: 'migrating |{bar}| {value}/{total} tenants | {failed} failed | ETA {eta_formatted} | {slug}',
          stream: io.stderr, hideCursor: true, etaBuffer: 50, fps: 10,
        });
        bar.start(total, done - 1, { slug: '', failed });
      }
      bar.update(done, { slug: report.slug, failed });
      if (done >= total) pause();
    },
    canaryFinished(reports: readonly TenantReport[]) {
      pause();
      writeLine(io.stdout, `Canary finished: ${reports.length} tenant${reports.length === 1 ? '' : 's'}:`);
      for (const r of reports) writeLine(io.stdout, `  ${tenantLine(r)}`);
    },
  };
}

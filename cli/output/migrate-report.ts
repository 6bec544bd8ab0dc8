import type { DatabaseRunResult } from '../../migrations/database-migrator';
import { describeFailure, FleetReport, TemplateReport, TenantOutcome, TenantReport } from '../../migrations/fleet-runner';
import { renderTable } from './table';

const OUTCOME_LABEL: Record<TenantOutcome, string> = {
  migrated: 'migrated', reverted: 'reverted', 'up-to-date': 'up to date', 'would-change': 'would migrate',
  failed: 'FAILED', drift: 'DRIFT', locked: 'LOCKED', skipped: 'skipped', 'not-attempted': 'not attempted',
};

export function outcomeLabel(o: TenantOutcome): string {
  return OUTCOME_LABEL[o];
}

/** `acme  0001 -> 0003  migrated  2 applied  41 ms` or the failure reason. */
export function tenantLine(r: TenantReport): string {
  const versions = `${r.from ?? '-'} -> ${(r.outcome === 'would-change' ? r.wouldEndAt : r.to) ?? '-'}`;
  let detail = '';
  if (r.outcome === 'migrated') detail = `${r.changed.length} applied`;
  else if (r.outcome === 'would-change') detail = `would apply ${r.changed.join(', ')}`;
  else if (r.outcome === 'failed' || r.outcome === 'drift' || r.outcome === 'locked') detail = describeFailure(r);
  else if (r.note) detail = r.note;
  return [r.slug, versions, outcomeLabel(r.outcome), detail, r.durationMs ? `${r.durationMs} ms` : ''].filter(Boolean).join('  ');
}

export function templateLine(t: TemplateReport): string {
  if (t.outcome === 'skipped') return `Template: skipped (${t.note}).`;
  const what = t.outcome === 'migrated' ? `migrated ${t.from ?? '-'} -> ${t.to} (${t.changed.join(', ')})`
    : t.outcome === 'would-change' ? `would apply ${t.changed.join(', ')}`
    : t.outcome === 'up-to-date' ? `up to date at ${t.to ?? '-'}`
    : `${outcomeLabel(t.outcome)}: ${describeFailure(t)}`;
  return `Template ${t.database}: ${what}.`;
}

/** The end-of-run summary: counts, the tenants that need attention, why the run stopped and what to do next. */
export function formatFleetReport(report: FleetReport): string {
  const out: string[] = [''];
  const rows = (Object.entries(report.counts) as Array<[TenantOutcome, number]>).filter(([, n]) => n > 0).map(([o, n]) => [outcomeLabel(o), String(n)]);
  out.push(renderTable(['OUTCOME', 'TENANTS'], rows.length ? rows : [['(no tenants selected)', '0']]));
  const attention = report.tenants.filter((t) => t.outcome === 'failed' || t.outcome === 'drift' || t.outcome === 'locked');
  if (attention.length) {
    out.push('', 'Needs attention:');
    out.push(renderTable(['TENANT', 'STATUS', 'VERSION', 'OUTCOME', 'REASON'], attention.map((t) => [t.slug, t.status, t.to ?? '-', outcomeLabel(t.outcome), describeFailure(t)]), 160));
  }
  if (report.template && report.template.outcome !== 'skipped' && ['failed', 'drift', 'locked'].includes(report.template.outcome)) {
    out.push('', templateLine(report.template));
  }
  if (report.stopped) out.push('', report.stopped.message);
  else if (report.failures && report.counts.failed + report.counts.drift) out.push('', 'Fix the tenants above and run the same command again: migrated tenants are skipped.');
  if (report.counts.locked) out.push('Locked tenants are being migrated by another runner: run again once it has finished.');
  if (report.counts.drift) out.push('Drift: a migration file changed after it was applied. Restore the file (git) or see docs/migrations.md#drift.');
  for (const w of report.mirrorWarnings) out.push(`warning: ${w}`);
  const verb = report.dryRun ? 'Dry run' : 'Run';
  out.push('', `${verb} finished in ${(report.durationMs / 1000).toFixed(1)} s${report.failures ? ` with ${report.failures} failure${report.failures === 1 ? '' : 's'}` : ''}.`);
  return out.join('\n');
}

/** Single-database result (migrate down; a dry run lists what it would revert). */
export function formatDatabaseResult(label: string, r: DatabaseRunResult): string {
  const lines = [`${label}: ${r.from ?? '-'} -> ${(r.outcome === 'would-change' ? r.wouldEndAt : r.to) ?? '-'}  ${r.outcome === 'would-change' ? 'dry run' : outcomeLabel(r.outcome)}`];
  for (const c of r.changed) lines.push(`  ${r.outcome === 'would-change' ? 'would revert' : 'reverted'} ${c}`);
  if (r.outcome === 'failed' || r.outcome === 'drift' || r.outcome === 'locked') lines.push(`  ${describeFailure(r)}`);
  return lines.join('\n');
}

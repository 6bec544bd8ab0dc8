// Prints the figures each reliability scenario recorded (requests, faults, errors, data lost) and
// merges them into <report dir>/figures.json, the source of the table in docs/reliability.md.
const { existsSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

class FiguresReporter {
  onRunComplete() {
    const dir = process.env.SILO_RELIABILITY_REPORT_DIR;
    if (!dir || !existsSync(dir)) return;
    const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'figures.json').sort();
    if (!files.length) return;
    const all = {};
    const lines = ['', 'Reliability figures:'];
    for (const f of files) {
      const { scenario, figures } = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      all[scenario] = figures;
      lines.push(`  ${scenario}`);
      for (const [k, v] of Object.entries(figures)) lines.push(`    ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    }
    writeFileSync(join(dir, 'figures.json'), JSON.stringify(all, null, 2));
    lines.push(`  (${join(dir, 'figures.json')})`, '');
    process.stdout.write(lines.join('\n'));
  }
}
module.exports = FiguresReporter;

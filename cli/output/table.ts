/** Left-aligned columns separated by two spaces; cells are cut at `maxCell` characters. */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, maxCell = 100): string {
  const cut = (s: string) => {
    const one = s.replace(/\s+/g, ' ');
    return one.length > maxCell ? `${one.slice(0, maxCell - 1)}…` : one;
  };
  const cells = [headers.map(cut), ...rows.map((r) => r.map(cut))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd())
    .join('\n');
}

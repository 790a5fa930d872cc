// The benchmarks' one table printer: a titled Markdown table on stdout (first column left,
// the numbers right-aligned), so a run can be pasted into the README as it is.

/** Nearest rank of an ascending list: every table's p50/p99 is a value that was measured. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function printTable(title: string, columns: string[], rows: (string | number)[][]): void {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |\n`;
  const align = columns.map((_, i) => (i === 0 ? '---' : '---:'));
  process.stdout.write(`\n### ${title}\n\n${line(columns)}${line(align)}`);
  for (const r of rows) process.stdout.write(line(r));
}

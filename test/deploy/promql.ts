// Metric names in a PromQL expression, for checking that alerts, recording rules and the
// dashboard only use series the bridge exports. A small tokenizer, not a parser: the real
// parse is Prometheus's (promtool check rules; the dashboard test runs every query).
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/#[^\n]*/g, '') // comments
    .replace(/\{[^}]*\}/g, (m) => (/__name__/.test(m) ? m : '{}')) // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\[[^\]]*\]/g, '') // ranges and subqueries
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  const named = /__name__\s*=\s*""/.test(text);
  if (named) throw new Error(`__name__ matchers are not supported here: ${expr}`);
  for (const m of text.matchAll(/(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue;
    names.add(name!);
  }
  return [...names];
}

/** Names a scrape can hold for prom-client's metrics: histograms also as _bucket, _sum, _count. */
export function exportedNames(metrics: { name: string; type: string }[]): Set<string> {
  const names = new Set<string>();
  for (const m of metrics) {
    names.add(m.name);
    if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (m.type === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Metric names in Prometheus text exposition (# TYPE lines, with histogram and summary series). */
export function namesInExposition(text: string): Set<string> {
  const metrics = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));
  return exportedNames(metrics);
}

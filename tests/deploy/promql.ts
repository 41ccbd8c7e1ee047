/**
 * Metric names referenced by a PromQL expression, by a small tokenizer: strings, label matchers,
 * range selectors and the label lists of by/without/on/ignoring/group_* are removed; what is
 * left that is an identifier, not a function or aggregation (followed by "("), a keyword or a
 * number, is a metric name. Good enough for our own rules and dashboards; a test pins it.
 */
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"]);
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g;

export function metricNamesIn(expr: string): Set<string> {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ");
  s = s.replace(/\{[^{}]*\}/g, " ");
  s = s.replace(/\[[^\][]*\]/g, " ");
  s = s.replace(GROUPING, " ");
  s = s.replace(/\b(?:group_left|group_right)\b/g, " ");
  s = s.replace(/\boffset\s+-?[0-9a-z]+/gi, " ");
  const names = new Set<string>();
  for (const m of s.matchAll(/[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const token = m[0];
    if (/^[0-9.]/.test(token) || m[1] !== undefined || KEYWORDS.has(token)) continue;
    if (token === "inf" || token === "nan" || token === "Inf" || token === "NaN") continue;
    names.add(token);
  }
  return names;
}

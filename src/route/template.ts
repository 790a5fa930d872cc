// `{{ path | filter: arg }}` templates for conf, dag_run_id, note and logical_date.
//
// Hand-written rather than Liquid/Nunjucks because three rules matter more than features:
// a value that is a whole `{{ x }}` keeps its JSON type, a missing path is an error (not ""),
// and event values are only ever data — they are substituted into a template compiled at
// config load and never parsed themselves. The grammar is five filters over a path.

export type Scope = Readonly<Record<string, unknown>>;

export type Rendered = { ok: true; value: unknown } | { ok: false; message: string };

export interface Template {
  /** The source text, for messages. */
  readonly text: string;
  render(scope: Scope): Rendered;
}

export type Segment = string | number;
type Literal = string | number | boolean | null;

interface Filter {
  name: FilterName;
  args: Literal[];
}

interface Expression {
  text: string;
  path: Segment[];
  filters: Filter[];
}

const FILTERS = {
  default: { args: [1, 1] },
  json: { args: [0, 0] },
  upper: { args: [0, 0] },
  lower: { args: [0, 0] },
  date: { args: [0, 1] },
} as const;
type FilterName = keyof typeof FILTERS;

export const TEMPLATE_ROOTS = ['event', 'data', 'route', 'source'] as const;

// Thrown only inside this module's parser; the exported functions return values.
class TemplateSyntaxError extends Error {}

export type Compiled = { ok: true; template: Template } | { ok: false; problems: { path: Segment[]; message: string }[] };

/** Compiles a string, or a YAML tree (conf) whose strings are templates, once at config load. */
export function compile(tree: unknown): Compiled {
  const problems: { path: Segment[]; message: string }[] = [];
  const template = compileTree(tree, [], problems);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, template };
}

function compileString(text: string): Template {
  const parts: (string | Expression)[] = [];
  let rest = text;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      parts.push(rest);
      break;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateSyntaxError(`"{{" without a closing "}}" in ${JSON.stringify(text)}`);
    parts.push(parseExpression(rest.slice(open + 2, close).trim()));
    rest = rest.slice(close + 2);
  }
  if (parts.some((p) => typeof p === 'string' && p.includes('}}'))) {
    throw new TemplateSyntaxError(`"}}" without an opening "{{" in ${JSON.stringify(text)}`);
  }

  const whole = parts.length === 1 && typeof parts[0] !== 'string' ? parts[0] : undefined;
  if (whole) return { text, render: (scope) => evaluate(whole, scope) };
  return {
    text,
    render(scope) {
      let out = '';
      for (const part of parts) {
        if (typeof part === 'string') {
          out += part;
          continue;
        }
        const value = evaluate(part, scope);
        if (!value.ok) return value;
        out += typeof value.value === 'string' ? value.value : JSON.stringify(value.value);
      }
      return { ok: true, value: out };
    },
  };
}

function compileTree(tree: unknown, path: Segment[], problems: { path: Segment[]; message: string }[]): Template {
  if (typeof tree === 'string') {
    try {
      return compileString(tree);
    } catch (err) {
      if (!(err instanceof TemplateSyntaxError)) throw err;
      problems.push({ path, message: err.message });
      return { text: tree, render: () => ({ ok: false, message: err.message }) };
    }
  }
  if (Array.isArray(tree)) {
    const items = tree.map((item, i) => compileTree(item, [...path, i], problems));
    return { text: '[…]', render: (scope) => renderAll(items, scope, (values) => values) };
  }
  if (tree !== null && typeof tree === 'object') {
    const keys = Object.keys(tree);
    const items = keys.map((k) => compileTree((tree as Record<string, unknown>)[k], [...path, k], problems));
    return {
      text: '{…}',
      render: (scope) => renderAll(items, scope, (values) => Object.fromEntries(keys.map((k, i) => [k, values[i]]))),
    };
  }
  return { text: String(tree), render: () => ({ ok: true, value: tree }) };
}

function renderAll(items: Template[], scope: Scope, build: (values: unknown[]) => unknown): Rendered {
  const values: unknown[] = [];
  for (const item of items) {
    const r = item.render(scope);
    if (!r.ok) return r;
    values.push(r.value);
  }
  return { ok: true, value: build(values) };
}

// --- parsing -------------------------------------------------------------------------

const TOKEN = /\s*(?:(?<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?<num>-?\d+(?:\.\d+)?)|(?<ident>[A-Za-z_][A-Za-z0-9_-]*)|(?<punct>[.|:,[\]]))/y;

interface Token {
  kind: 'str' | 'num' | 'ident' | 'punct';
  value: string;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m || m.index !== at) {
      if (/^\s*$/.test(text.slice(at))) break;
      throw new TemplateSyntaxError(`unexpected ${JSON.stringify(text.slice(at).trim().slice(0, 10))} in {{ ${text} }}`);
    }
    const [kind, value] = Object.entries(m.groups!).find(([, v]) => v !== undefined)! as [Token['kind'], string];
    tokens.push({ kind, value });
  }
  return tokens;
}

function parseExpression(text: string): Expression {
  if (text === '') throw new TemplateSyntaxError('empty {{ }}');
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i];
  const fail = (what: string): never => {
    throw new TemplateSyntaxError(`${what} in {{ ${text} }}`);
  };
  const literal = (): Literal => {
    const t = tokens[i++];
    if (!t) return fail('missing argument');
    if (t.kind === 'str') return unquote(t.value, fail);
    if (t.kind === 'num') return Number(t.value);
    if (t.kind === 'ident' && (t.value === 'true' || t.value === 'false')) return t.value === 'true';
    if (t.kind === 'ident' && t.value === 'null') return null;
    return fail(`expected a string, number, true, false or null, found "${t.value}"`);
  };

  const root = tokens[i++];
  if (!root || root.kind !== 'ident') return fail('expected a path such as data.run_id');
  if (!(TEMPLATE_ROOTS as readonly string[]).includes(root.value)) {
    fail(`unknown root "${root.value}" (use ${TEMPLATE_ROOTS.join(', ')})`);
  }
  const path: Segment[] = [root.value];
  while (peek()?.value === '.' || peek()?.value === '[') {
    const t = tokens[i++]!;
    if (t.value === '.') {
      const key = tokens[i++];
      if (!key || (key.kind !== 'ident' && key.kind !== 'num')) fail('expected a name after "."');
      // `a.1.5` tokenises "1.5" as one number: it is two keys.
      path.push(...key!.value.split('.'));
    } else {
      const key = literal();
      if (typeof key !== 'string' && typeof key !== 'number') fail('expected a string or index inside [ ]');
      if (tokens[i++]?.value !== ']') fail('expected "]"');
      path.push(key as string | number);
    }
  }

  const filters: Filter[] = [];
  while (i < tokens.length) {
    if (tokens[i++]!.value !== '|') fail(`expected "|" before "${tokens[i - 1]!.value}"`);
    const name = tokens[i++];
    if (!name || name.kind !== 'ident' || !(name.value in FILTERS)) {
      fail(`unknown filter "${name?.value ?? ''}" (filters: ${Object.keys(FILTERS).join(', ')})`);
    }
    const args: Literal[] = [];
    if (peek()?.value === ':') {
      i++;
      args.push(literal());
      while (peek()?.value === ',') {
        i++;
        args.push(literal());
      }
    }
    const [min, max] = FILTERS[name!.value as FilterName].args;
    if (args.length < min || args.length > max) fail(`filter "${name!.value}" takes ${min === max ? min : `${min} to ${max}`} argument(s)`);
    filters.push({ name: name!.value as FilterName, args });
  }
  return { text, path, filters };
}

// --- evaluation ----------------------------------------------------------------------

function lookup(scope: Scope, path: Segment[]): unknown {
  let node: unknown = scope;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    // Own properties only: "__proto__" or "constructor" in a path never reach a prototype.
    if (!Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function evaluate(expr: Expression, scope: Scope): Rendered {
  let value = lookup(scope, expr.path);
  for (const filter of expr.filters) {
    // A missing value passes through the other filters until a `default` supplies one.
    if (value === undefined && filter.name !== 'default') continue;
    const applied = applyFilter(filter, value);
    if (!applied.ok) return { ok: false, message: `{{ ${expr.text} }}: ${applied.message}` };
    value = applied.value;
  }
  if (value === undefined) {
    return { ok: false, message: `{{ ${expr.text} }}: ${formatPath(expr.path)} is missing (add "| default: …" if it is optional)` };
  }
  return { ok: true, value };
}

function applyFilter(filter: Filter, value: unknown): Rendered {
  switch (filter.name) {
    case 'default':
      return { ok: true, value: value === undefined || value === null ? filter.args[0] : value };
    case 'json':
      return { ok: true, value: JSON.stringify(value) ?? 'null' };
    case 'upper':
    case 'lower':
      if (typeof value !== 'string') return { ok: false, message: `${filter.name} needs a string, got ${describe(value)}` };
      return { ok: true, value: filter.name === 'upper' ? value.toUpperCase() : value.toLowerCase() };
    case 'date':
      return formatDate(value, filter.args[0]);
  }
}

/** `date` reads ISO 8601 strings or unix seconds; no argument gives ISO 8601 UTC. */
function formatDate(value: unknown, format: Literal | undefined): Rendered {
  const date = typeof value === 'number' ? new Date(value * 1000) : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) return { ok: false, message: `date needs an ISO 8601 string or unix seconds, got ${describe(value)}` };
  if (format === undefined) return { ok: true, value: date.toISOString().replace('.000Z', 'Z') };
  if (typeof format !== 'string') return { ok: false, message: 'date format must be a string such as "YYYY-MM-DD"' };
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const parts: Record<string, string> = {
    YYYY: pad(date.getUTCFullYear(), 4),
    MM: pad(date.getUTCMonth() + 1),
    DD: pad(date.getUTCDate()),
    HH: pad(date.getUTCHours()),
    mm: pad(date.getUTCMinutes()),
    ss: pad(date.getUTCSeconds()),
  };
  return { ok: true, value: format.replace(/YYYY|MM|DD|HH|mm|ss/g, (token) => parts[token]!) };
}

/** A quoted literal: "…" or '…' with backslash escapes for the quote and the backslash. */
function unquote(token: string, fail: (what: string) => never): string {
  return token.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === '\\' || c === '"' || c === "'" ? c : fail(`only \\\\, \\" and \\' escapes are allowed in ${token}`)));
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  return value === null ? 'null' : `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}

function formatPath(path: Segment[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

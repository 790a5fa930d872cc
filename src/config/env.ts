// `${VAR}` and `${VAR:-default}` are substituted in string values of the parsed YAML tree,
// never in the raw text: a secret containing `:`, `#` or a newline cannot change the
// document's structure. `$${` stays a literal `${`.

export type Env = Readonly<Record<string, string | undefined>>;

export interface Substituted {
  value: unknown;
  /** Paths (as printed in errors) whose value came, at least in part, from the environment. */
  substitutedPaths: Set<string>;
  problems: { path: string; message: string }[];
}

const PLACEHOLDER = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

export function substituteEnv(tree: unknown, env: Env): Substituted {
  const substitutedPaths = new Set<string>();
  const problems: Substituted['problems'] = [];

  const walk = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === 'string') {
      if (!node.includes('${')) return node;
      const where = formatPath(path);
      return node.replace(PLACEHOLDER, (match, name: string | undefined, fallback: string | undefined) => {
        if (match === '$${') return '${';
        substitutedPaths.add(where);
        const value = env[name as string];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        if (value === undefined) problems.push({ path: where, message: `environment variable ${name} is not set` });
        return '';
      });
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return node;
  };

  return { value: walk(tree, []), substitutedPaths, problems };
}

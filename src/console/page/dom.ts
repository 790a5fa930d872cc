// Elements are built with textContent only: event bodies and names come from senders, so
// nothing from the API is ever parsed as HTML.

type Child = Node | string | number | null | undefined | false;
type Props = { class?: string; text?: string; on?: Partial<{ [K in keyof HTMLElementEventMap]: (e: HTMLElementEventMap[K]) => void }> } & Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (key === 'class') el.className = String(value);
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'on') for (const [type, fn] of Object.entries(value as Record<string, EventListener>)) el.addEventListener(type, fn);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
}

const SVG = 'http://www.w3.org/2000/svg';
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

/** A state as a coloured badge whose text carries the meaning (not the colour alone). */
export const badge = (state: string) => h('span', { class: `state state-${state}`, text: state });

export function table(caption: string, headers: string[], rows: Child[][], empty = 'Nothing here.'): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted', text: `${caption}: ${empty}` });
  return h(
    'table',
    {},
    h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : h('td', {}, c)))))),
  );
}

/** In the operator's time zone, named, so a time read off the page can be compared with logs. */
export const time = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' }) : '—';

// The orchestration graph, laid out by dagre and drawn as SVG. Red is exactly what the loop
// guard sees as a cycle (GET /v1/graph is computed from the guard's own graph).
import { Graph, layout, type EdgeLabel, type NodeLabel } from '@dagrejs/dagre';
import { api, type GraphView } from './api.js';
import { h, s, table, time } from './dom.js';
import { announce, failure, type View } from './shell.js';

const KIND_NAME = { pipeline: 'Planasonix pipeline', dag: 'Airflow DAG', asset: 'Airflow asset', match: 'route pattern' } as const;

export async function showGraph(view: View): Promise<void> {
  const got = await api<GraphView>('/v1/graph');
  if (!got.ok) return view.render('Orchestration graph', failure('the graph', got.message));
  const graph = got.value;
  view.render(
    'Orchestration graph',
    legend(),
    graph.nodes.length === 0 ? h('p', { class: 'muted', text: 'No routes and no known edges yet.' }) : h('div', { class: 'graph' }, draw(graph)),
    h('h3', { text: `Cycles (${graph.cycles.length})` }),
    graph.cycles.length === 0
      ? h('p', { class: 'muted', text: `No cycles. Lineage still stops any chain deeper than ${graph.max_depth}.` })
      : h('ul', { class: 'cycles' }, ...graph.cycles.map((c) => h('li', {}, h('span', { class: 'mono', text: c.path }), h('span', { class: 'muted', text: c.bounded_by })))),
    h('h3', { text: `Open breakers (${graph.breakers.length})` }),
    table(
      'Loop-guard breakers now refusing triggers',
      ['From pipeline', 'To', 'Open until', 'In the drawing', 'Action'],
      graph.breakers.map((b) => {
        const reset = h('button', { type: 'button', text: 'Reset', 'aria-label': `Reset the breaker from ${b.source_pipeline} to ${b.target}` });
        reset.addEventListener('click', async () => {
          reset.disabled = true;
          const done = await api<{ was_open: boolean }>(`/v1/loop-guard/breakers/${encodeURIComponent(b.key)}`, 'DELETE');
          if (!done.ok) {
            reset.disabled = false;
            return announce(`Resetting the breaker ${b.key} failed: ${done.message}`, true);
          }
          await showGraph(view);
          announce(`Breaker ${b.source_pipeline} → ${b.target} reset: its triggers pass again and its count restarts`);
        });
        return [h('span', { class: 'mono', text: b.source_pipeline }), h('span', { class: 'mono', text: b.target }), time(b.open_until), b.drawn ? 'amber mark on its arrow' : 'no arrow for it (rendered asset uri, or a pipeline only a pattern names)', reset];
      }),
      'none: every pipeline → target pair may trigger.',
    ),
    h('h3', { text: 'Arrows' }),
    table(
      'Every arrow in the graph',
      ['From', 'To', 'Kind', 'Route', 'Cycle', 'Note'],
      graph.edges.map((e) => [
        h('span', { class: 'mono', text: e.from }),
        h('span', { class: 'mono', text: e.to }),
        e.kind === 'edge' ? 'declared edge' : e.kind === 'learned' ? 'learned edge' : 'route',
        e.route ?? '',
        e.cycle ? h('span', { class: 'error', text: 'on a cycle' }) : 'no',
        [breakerNote(e), e.assumption ?? ''].filter(Boolean).join('; '),
      ]),
    ),
  );
}

function legend(): HTMLElement {
  const item = (cls: string, text: string) => h('span', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text);
  return h('p', { class: 'legend' }, item('', 'route'), item('learned', 'learned DAG → pipeline edge'), item('assumed', 'assumed (the route names no pipeline)'), item('cycle', 'on a cycle'), h('span', {}, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'breaker open'));
}

const breakerNote = (e: GraphView['edges'][number]) => (e.breaker_open_until ? `breaker open until ${time(e.breaker_open_until)}` : '');

const NODE_H = 46;
/** Characters a node shows; its width follows, so the text always fits its box. */
const NODE_CHARS = 48;
const nodeText = (label: string) => (label.length > NODE_CHARS ? `${label.slice(0, NODE_CHARS - 1)}…` : label);

function draw(view: GraphView): SVGSVGElement {
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 90, edgesep: 16, marginx: 16, marginy: 16 });
  for (const n of view.nodes) g.setNode(n.id, { label: n.label, width: Math.max(nodeText(n.label).length * 7.2, KIND_NAME[n.kind].length * 7.4) + 28, height: NODE_H } as NodeLabel);
  view.edges.forEach((e, i) => {
    const label = `${e.kind === 'route' ? (e.route ?? '') : e.kind}${e.breaker_open_until ? ' (breaker open)' : ''}`;
    g.setEdge(e.from, e.to, { label, width: label.length * 6.2, height: 14, labelpos: 'c' } as EdgeLabel, String(i));
  });
  layout(g);
  const size = g.graph();
  const onCycle = new Set(view.cycles.flatMap((c) => c.nodes));
  const marker = (id: string, cls: string) =>
    s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: cls }, s('path', { d: 'M0,0 L10,5 L0,10 z', fill: cls === 'cycle' ? '#c62828' : cls === 'breaker' ? '#a05a00' : '#5b6473' }));
  const svg = s(
    'svg',
    { width: Math.ceil(size.width ?? 0), height: Math.ceil(size.height ?? 0), role: 'img', 'aria-labelledby': 'graph-title' },
    s('title', { id: 'graph-title' }, `Orchestration graph: ${view.nodes.length} nodes, ${view.edges.length} arrows, ${view.cycles.length} cycle(s)`),
    s('defs', {}, marker('arrow', ''), marker('arrow-cycle', 'cycle'), marker('arrow-breaker', 'breaker')),
  );
  view.edges.forEach((e, i) => {
    const laid = g.edge(e.from, e.to, String(i));
    const points: { x: number; y: number }[] = laid.points ?? [];
    const d = points.map((p, k) => `${k === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    const classes = ['edge', e.kind, e.assumption ? 'assumed' : '', e.cycle ? 'cycle' : '', e.breaker_open_until ? 'breaker' : ''].filter(Boolean).join(' ');
    const tip = [`${e.from} → ${e.to}`, e.route ? `route ${e.route}` : `${e.kind} edge`, e.cycle ? 'on a cycle' : '', breakerNote(e), e.assumption ?? ''].filter(Boolean).join('\n');
    // Halfway along the first segment: the middle of the arrow is where its label sits.
    const [p0, p1] = points;
    const mark = p0 && p1 ? { x: (p0.x + p1.x) / 2, y: (p0.y + p1.y) / 2 } : undefined;
    svg.append(
      s(
        'g',
        { class: classes, 'data-from': e.from, 'data-to': e.to },
        s('title', {}, tip),
        s('path', { d, 'marker-end': `url(#${e.cycle ? 'arrow-cycle' : e.breaker_open_until ? 'arrow-breaker' : 'arrow'})` }),
        // An open breaker is a mark on the arrow, so a cycle stays red while its breaker holds it.
        e.breaker_open_until && mark ? s('circle', { class: 'breaker-mark', cx: mark.x.toFixed(1), cy: mark.y.toFixed(1), r: 7 }) : null,
        laid.x !== undefined && laid.y !== undefined ? s('text', { x: laid.x, y: laid.y + 4, 'text-anchor': 'middle' }, laid.label ?? '') : null,
      ),
    );
  });
  for (const n of view.nodes) {
    const laid = g.node(n.id);
    const x = laid.x - laid.width / 2;
    const y = laid.y - laid.height / 2;
    svg.append(
      s(
        'g',
        { class: `node ${n.kind}${onCycle.has(n.id) ? ' cycle' : ''}`, 'data-id': n.id },
        s('title', {}, `${KIND_NAME[n.kind]}: ${n.label}`),
        s('rect', { x, y, width: laid.width, height: laid.height, rx: n.kind === 'dag' ? 4 : 14 }),
        s('text', { class: 'kind', x: laid.x, y: y + 15, 'text-anchor': 'middle' }, KIND_NAME[n.kind]),
        s('text', { x: laid.x, y: y + 33, 'text-anchor': 'middle' }, nodeText(n.label)),
      ),
    );
  }
  return svg;
}

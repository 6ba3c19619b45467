// The graph view: the network as a layered graph (dagre's layered layout, @dagrejs/dagre), every
// weight layer coloured by its risk under the chosen scheme (verdict.js's layerWhy) with its
// outlier channel count as a badge; If/Loop/Scan bodies and name scopes as groups that open
// and shut (shut by default on a model of more than COLLAPSE_ABOVE nodes); pan and zoom,
// fit to view, search by name. Data in (an analysis), SVG out.
//
//   renderGraphView(element, analysis, { scheme, selected, onSelect, onScheme, equalization })
//     -> { destroy(), select(position), reveal(nodeId), search(text), ready (a Promise: the
//          first drawing done), svg() }
//
// Contract (tests rely on it):
//   root               div.ql-view.ql-graph-view; data-state="drawn" once laid out and drawn
//                      (data-nodes: boxes drawn; data-layout-ms: the last layout's time)
//   node               g.ql-graph-node[data-node="<id in analysis.graph.nodes>"][data-op]
//                      [data-layer="<position>" for weight layers][data-risk]; rect fill = colours.risk
//                      badge g.ql-graph-badge (text: outlier count), on layers with outlier channels
//   group              g.ql-graph-group[data-group][data-open="true|false"][data-count]; a shut one is
//                      a box; click (or Enter) opens and shuts it
//   edge               path.ql-graph-edge[data-from][data-to]
//   controls           button[data-action="fit|expand-all|collapse-all"], input[data-action="search"]
//                      (Enter: next match), [data-field="search-count"], select[data-action="scheme"]
//   selection          .ql-selected on the selected layer's node; search matches .ql-match
//   equalization       with options.equalization: path.ql-graph-sequence[data-sequence="<k>"] through
//                      sequence k's layers, g.ql-graph-stop[data-stops="<k> ..."] (not data-stop, which the Equalization view gives each stop it lists) beside the box where
//                      stops k... happened, their reasons in its <title>
// Model strings are written with .text() / textContent only.
import * as d3 from 'd3';
import dagre from '@dagrejs/dagre';
import { colors, palette, schemeLabel, schemesOf, ensureStyles, tooltip, viewRoot, legend, RISK_LEVELS } from './common.js';
import { layerWhy, stopReasonKey } from '../verdict.js';
import { ancestors, buildGraphModel, defaultCollapsed, visibleGraph } from '../graph-model.js';
import { riskDbFor } from '../presentation.js';

const NODE = { width: 150, height: 36 };
const GROUP = { width: 176, height: 44 };
const EXPAND_ALL_MAX = 1000;

const css = `
.ql-graph-view .ql-graph-bar { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; margin: 4px 0 6px; }
.ql-graph-view .ql-graph-bar input[type=search] { width: 16em; font: inherit; padding: 2px 4px; }
.ql-graph-view .ql-graph-bar select, .ql-graph-view .ql-graph-bar button { font: inherit; }
.ql-graph-view .ql-graph-frame { position: relative; border: 1px solid var(--ql-v-line); height: 72vh; min-height: 360px; background: var(--ql-v-bg); overflow: hidden; }
.ql-graph-view .ql-graph-frame svg { width: 100%; height: 100%; cursor: grab; }
.ql-graph-view .ql-graph-node { cursor: pointer; }
.ql-graph-view .ql-graph-node rect.ql-box { stroke: var(--ql-v-muted); stroke-width: 1; }
.ql-graph-view .ql-graph-node.ql-plain rect.ql-box { fill: var(--ql-v-bg); stroke: var(--ql-v-axis-line); }
.ql-graph-view .ql-graph-node text { font-size: 11px; pointer-events: none; fill: var(--ql-v-fg); }
.ql-graph-view .ql-graph-node text.ql-op { font-weight: 600; }
.ql-graph-view .ql-graph-node.ql-dark text { fill: #fff; }
.ql-graph-view .ql-graph-node:not(.ql-plain):not(.ql-dark) text { fill: #1a1a1a; } /* on a light risk colour, in either theme */
.ql-graph-view .ql-graph-node.ql-selected rect.ql-box { stroke: var(--ql-v-ink); stroke-width: 3; }
.ql-graph-view .ql-graph-node.ql-match rect.ql-box, .ql-graph-view .ql-graph-group.ql-match > rect.ql-box { stroke: ${palette.blue}; stroke-width: 3; stroke-dasharray: 4 2; }
.ql-graph-view .ql-graph-group > rect.ql-box { fill: rgba(128,128,128,0.06); stroke: var(--ql-v-axis-line); stroke-dasharray: 3 2; }
.ql-graph-view .ql-graph-group[data-open=false] > rect.ql-box { fill: var(--ql-v-panel); stroke: var(--ql-v-axis-line); stroke-dasharray: none; }
.ql-graph-view .ql-graph-group .ql-head { cursor: pointer; }
.ql-graph-view .ql-graph-group text { font-size: 11px; pointer-events: none; fill: var(--ql-v-fg); }
.ql-graph-view .ql-graph-group text.ql-title { font-weight: 600; }
.ql-graph-view .ql-graph-edge { fill: none; stroke: var(--ql-v-axis-line); stroke-width: 1.1; }
.ql-graph-view .ql-graph-sequence { fill: none; stroke: ${palette.blue}; stroke-width: 4; stroke-opacity: 0.55; pointer-events: none; }
.ql-graph-view .ql-graph-stop text { font-size: 11px; font-weight: 600; fill: var(--ql-v-fg); }
.ql-graph-view .ql-graph-badge circle { fill: ${colors.flagged}; stroke: var(--ql-v-bg); stroke-width: 1.5; }
.ql-graph-view .ql-graph-badge text { fill: #fff; font-size: 10px; font-weight: 700; text-anchor: middle; }
.ql-graph-view .ql-graph-info { margin: 6px 0; min-height: 1.4em; overflow-wrap: anywhere; }
.ql-graph-view .ql-graph-busy { position: absolute; left: 10px; top: 8px; color: var(--ql-v-muted); }
`;

// Shortens `text` to about `max` characters, keeping its end (where names differ).
const clipStart = (text, max) => (text.length <= max ? text : `…${text.slice(text.length - max + 1)}`);
// Shortens a sentence to about `max` characters, keeping its start.
const clipEnd = (text, max) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
const lastPart = (name) => {
  const k = name.lastIndexOf('/');
  return k >= 0 && k < name.length - 1 ? name.slice(k + 1) : name;
};
// Dark fills want white text.
const darkFill = (risk) => risk === 'high' || risk === 'low' || risk === 'failed';

export function renderGraphView(element, analysis, options = {}) {
  const root = viewRoot(element, 'ql-graph-view');
  ensureStyles('ql-graph-view', css, element.ownerDocument);
  const model = buildGraphModel(analysis);
  if (!model) {
    root.append(
      Object.assign(document.createElement('p'), {
        className: 'ql-empty',
        textContent: 'This result has no graph (it was saved by an older QuantLens): analyse the model again to see it.',
      }),
    );
    root.dataset.state = 'drawn';
    return { destroy: () => root.remove(), select() {}, reveal() {}, search() {}, ready: Promise.resolve(), svg: () => null };
  }
  const layers = analysis.layers || [];
  const state = {
    scheme: options.scheme || 'int8PerTensor',
    selected: Number.isInteger(options.selected) ? options.selected : null,
    matches: [],
    match: -1,
    layoutSeq: 0,
    positions: new Map(), // item key -> {x, y, width, height} (absolute)
    transform: null,
  };
  // Opens with the groups around the selected layer open (one layout, not two).
  state.collapsed = defaultCollapsed(
    model,
    undefined,
    model.byLayer.has(state.selected) ? [model.byLayer.get(state.selected)] : [],
  );
  const tip = tooltip(root);

  // ---------------------------------------------------------------- controls
  const bar = d3.select(root).append('div').attr('class', 'ql-graph-bar');
  const schemes = schemesOf(analysis);
  const schemeSelect = bar.append('label').text('Risk under ').append('select').attr('data-action', 'scheme');
  schemeSelect
    .selectAll('option')
    .data(schemes)
    .join('option')
    .attr('value', (k) => k)
    .text((k) => schemeLabel(k));
  schemeSelect.property('value', state.scheme).on('change', () => {
    state.scheme = schemeSelect.property('value');
    if (typeof options.onScheme === 'function') options.onScheme(state.scheme);
    recolour();
    drawLegend();
  });
  const search = bar
    .append('input')
    .attr('type', 'search')
    .attr('data-action', 'search')
    .attr('placeholder', 'Search node names')
    .attr('aria-label', 'Search node names');
  const searchCount = bar.append('span').attr('class', 'ql-muted').attr('data-field', 'search-count');
  bar
    .append('button')
    .attr('data-action', 'fit')
    .text('Fit to view')
    .on('click', () => fit(true));
  // Every node at once is one layout of them all: offered up to EXPAND_ALL_MAX nodes.
  bar
    .append('button')
    .attr('data-action', 'expand-all')
    .text('Expand all')
    .property('disabled', model.nodes.length > EXPAND_ALL_MAX)
    .attr(
      'title',
      model.nodes.length > EXPAND_ALL_MAX
        ? `${model.nodes.length} nodes are too many to lay out at once: open the groups you need (or search)`
        : null,
    )
    .on('click', () => {
      state.collapsed = new Set();
      state.transform = null; // a new picture: shown from its top
      layout();
    });
  bar
    .append('button')
    .attr('data-action', 'collapse-all')
    .text('Collapse all')
    .on('click', () => {
      state.collapsed = new Set(model.groups.keys());
      state.transform = null;
      layout();
    });
  const legendBox = d3.select(root).append('div');
  const drawLegend = () => {
    legendBox.selectAll('*').remove();
    const t = riskDbFor(state.scheme);
    const items = RISK_LEVELS.map((r) => ({
      color: colors.risk[r],
      label:
        r === 'high'
          ? `high (below ${Math.round(t.high)} dB)`
          : r === 'medium'
            ? `medium (below ${Math.round(t.medium)} dB or outliers)`
            : r === 'low'
              ? 'low'
              : 'failed',
    }));
    items.push({ color: colors.flagged, label: 'outlier channels (count)', kind: 'dot' });
    items.push({ color: '#ffffff', label: 'no weights', kind: 'dot', stroke: '#999' });
    legend(legendBox.node(), items);
  };
  drawLegend();

  const frame = d3.select(root).append('div').attr('class', 'ql-graph-frame');
  const busy = frame.append('div').attr('class', 'ql-graph-busy').text('Laying out the graph…');
  const svg = frame
    .append('svg')
    .attr('role', 'img')
    .attr('aria-label', `The graph of ${analysis.model?.name || 'the model'}: ${model.nodes.length} nodes`);
  const viewport = svg.append('g').attr('class', 'ql-graph-viewport');
  const gEdges = viewport.append('g');
  const gSeq = viewport.append('g');
  const gItems = viewport.append('g');
  const info = d3.select(root).append('div').attr('class', 'ql-graph-info').attr('data-field', 'info');
  const zoom = d3
    .zoom()
    .scaleExtent([0.02, 4])
    .on('zoom', (event) => {
      state.transform = event.transform;
      viewport.attr('transform', event.transform);
    });
  svg.call(zoom).on('dblclick.zoom', null);

  // ---------------------------------------------------------------- risk
  const riskOfNode = (n) => (n.layer >= 0 ? layerWhy(layers[n.layer], state.scheme).risk : null);
  const rank = { high: 3, failed: 2, medium: 1, low: 0 };
  // The worst risk among the layers inside a group, and their outlier channels.
  const groupFacts = (id) => {
    let worst = null;
    let outliers = 0;
    let layerCount = 0;
    const visit = (grp) => {
      if (grp.kind === 'subgraph') visitNode(model.nodes[grp.node]);
      for (const m of grp.members) {
        if (m.type === 'node') visitNode(model.nodes[m.id]);
        else visit(model.groups.get(m.id));
      }
    };
    const visitNode = (n) => {
      if (n.layer < 0) return;
      layerCount++;
      const l = layers[n.layer];
      outliers += l.outlierChannels?.length || 0;
      const r = riskOfNode(n);
      if (worst == null || rank[r] > rank[worst]) worst = r;
    };
    visit(model.groups.get(id));
    return { worst, outliers, layers: layerCount };
  };

  // ---------------------------------------------------------------- layout
  let visible = null;
  let resolveReady;
  const ready = new Promise((r) => (resolveReady = r));

  async function layout({ thenReveal = null } = {}) {
    const seq = ++state.layoutSeq;
    root.dataset.state = 'layout';
    busy.style('display', null);
    // Let the page show "Laying out" before the synchronous layout.
    await new Promise((r) => setTimeout(r, 0));
    if (seq !== state.layoutSeq) return;
    const t0 = performance.now();
    visible = visibleGraph(model, state.collapsed);
    const parentOf = new Map(visible.items.map((it) => [it.key, it.parent]));
    // An edge between a group and something inside it cannot be drawn: left out.
    const inside = (key, groupKey) => {
      for (let p = parentOf.get(key) ?? null; p != null; p = parentOf.get(p) ?? null) if (p === groupKey) return true;
      return false;
    };
    const drawnEdges = visible.edges.filter((e) => !inside(e.from, e.to) && !inside(e.to, e.from));
    const g = new dagre.graphlib.Graph({ compound: true });
    g.setGraph({ rankdir: 'TB', nodesep: 20, ranksep: 30, marginx: 16, marginy: 16 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const it of visible.items) {
      const open = it.type === 'group' && it.open;
      g.setNode(it.key, open ? { paddingTop: 24 } : it.type === 'node' ? { ...NODE } : { ...GROUP });
    }
    for (const it of visible.items) if (it.parent != null) g.setParent(it.key, it.parent);
    for (const e of drawnEdges) g.setEdge(e.from, e.to);
    try {
      dagre.layout(g);
    } catch (err) {
      busy.text(`The graph could not be laid out (${err.message}): collapse some groups.`);
      root.dataset.state = 'error';
      resolveReady();
      return;
    }
    state.positions = new Map();
    for (const it of visible.items) {
      const n = g.node(it.key);
      state.positions.set(it.key, { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height });
    }
    // An open group's box holds its title above its members.
    for (const it of visible.items) {
      if (it.type !== 'group' || !it.open) continue;
      const p = state.positions.get(it.key);
      p.y -= 20;
      p.height += 20;
    }
    const graph = g.graph();
    state.size = { width: graph.width, height: graph.height };
    const routes = drawnEdges.map((e) => g.edge(e.from, e.to)?.points || null);
    draw(visible, drawnEdges, routes);
    root.dataset.layoutMs = String(Math.round(performance.now() - t0));
    root.dataset.nodes = String(visible.items.length);
    busy.style('display', 'none');
    if (thenReveal != null) centerOn(thenReveal);
    else if (!state.transform) start();
    root.dataset.state = 'drawn';
    resolveReady();
  }

  // ---------------------------------------------------------------- drawing
  function draw(vis, drawnEdges, routes) {
    gEdges.selectAll('*').remove();
    gItems.selectAll('*').remove();
    const line = d3.line().curve(d3.curveBasis);
    gEdges
      .selectAll('path')
      .data(drawnEdges)
      .join('path')
      .attr('class', 'ql-graph-edge')
      .attr('data-from', (e) => e.from)
      .attr('data-to', (e) => e.to)
      .attr('marker-end', 'url(#ql-graph-arrow)')
      .attr('d', (e, k) => {
        const r = routes[k];
        if (r && r.length >= 2) return line(r.map((p) => [p.x, p.y]));
        const a = state.positions.get(e.from);
        const b = state.positions.get(e.to);
        return line([
          [a.x + a.width / 2, a.y + a.height],
          [b.x + b.width / 2, b.y],
        ]);
      })
      .append('title')
      .text((e) => e.tensors.join(', '));
    let defs = svg.select('defs');
    if (defs.empty()) {
      defs = svg.insert('defs', ':first-child');
      defs
        .append('marker')
        .attr('id', 'ql-graph-arrow')
        .attr('viewBox', '0 0 8 8')
        .attr('refX', 7)
        .attr('refY', 4)
        .attr('markerWidth', 7)
        .attr('markerHeight', 7)
        .attr('orient', 'auto')
        .append('path')
        .attr('d', 'M0,0 L8,4 L0,8 z')
        .style('fill', 'var(--ql-v-axis-line)');
    }
    // Groups first (open ones behind their members), then nodes.
    for (const it of vis.items) {
      const p = state.positions.get(it.key);
      if (!p) continue;
      if (it.type === 'group') drawGroup(it, p);
      else drawNode(it, p);
    }
    recolour();
    markSelection();
    drawSequences();
  }

  function drawNode(it, p) {
    const n = model.nodes[it.id];
    const g = gItems
      .append('g')
      .attr('class', 'ql-graph-node')
      .attr('data-node', n.id)
      .attr('data-op', n.op)
      .attr('transform', `translate(${p.x},${p.y})`)
      .attr('tabindex', 0)
      .attr('role', 'button');
    if (n.layer >= 0) g.attr('data-layer', n.layer);
    g.append('rect').attr('class', 'ql-box').attr('width', p.width).attr('height', p.height).attr('rx', 4);
    g.append('text')
      .attr('class', 'ql-op')
      .attr('x', 7)
      .attr('y', 14)
      .text(clipStart(n.op + (n.layer >= 0 && layers[n.layer].depthwise ? ' dw' : ''), 20));
    g.append('text')
      .attr('x', 7)
      .attr('y', 28)
      .text(clipStart(lastPart(n.name), 22));
    g.append('title').text(n.name);
    const l = n.layer >= 0 ? layers[n.layer] : null;
    const outliers = l && !l.error ? l.outlierChannels?.length || 0 : 0;
    if (outliers) badge(g, p.width, outliers);
    g.on('click', (event) => {
      event.stopPropagation();
      choose(n);
    })
      .on('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          choose(n);
        }
      })
      .on('mouseenter', (event) => tip.show(event, n.name, nodeRows(n)))
      .on('mousemove', (event) => tip.move(event))
      .on('mouseleave', () => tip.hide());
  }

  function badge(g, width, count) {
    const b = g
      .append('g')
      .attr('class', 'ql-graph-badge')
      .attr('transform', `translate(${width - 2},2)`);
    b.append('circle').attr('r', count > 99 ? 11 : 9);
    b.append('text')
      .attr('y', 3.5)
      .text(count > 999 ? '999+' : String(count));
  }

  function drawGroup(it, p) {
    const grp = model.groups.get(it.id);
    const g = gItems
      .append('g')
      .attr('class', 'ql-graph-group')
      .attr('data-group', it.id)
      .attr('data-kind', grp.kind)
      .attr('data-open', String(it.open))
      .attr('data-count', grp.nodes)
      .attr('transform', `translate(${p.x},${p.y})`);
    g.append('rect').attr('class', 'ql-box').attr('width', p.width).attr('height', p.height).attr('rx', 6);
    const facts = groupFacts(it.id);
    const head = g
      .append('g')
      .attr('class', 'ql-head')
      .attr('tabindex', 0)
      .attr('role', 'button')
      .attr('aria-expanded', String(it.open));
    head
      .append('rect')
      .attr('width', it.open ? p.width : p.width)
      .attr('height', it.open ? 22 : p.height)
      .attr('fill', 'transparent');
    const title =
      grp.kind === 'subgraph'
        ? `${model.nodes[grp.node].op} ${lastPart(grp.label)}`
        : grp.kind === 'run'
          ? `nodes ${grp.label}`
          : lastPart(grp.label);
    head
      .append('text')
      .attr('class', 'ql-title')
      .attr('x', 8)
      .attr('y', 15)
      .text(`${it.open ? '▾' : '▸'} ${clipStart(title, it.open ? Math.max(12, Math.floor(p.width / 7)) : 22)}`);
    if (!it.open) {
      head
        .append('text')
        .attr('x', 8)
        .attr('y', 32)
        .attr('class', 'ql-muted')
        .text(`${grp.nodes} nodes${facts.layers ? `, ${facts.layers} layers` : ''}`);
      if (facts.worst) {
        g.insert('rect', '.ql-head')
          .attr('class', 'ql-risk-strip')
          .attr('data-risk', facts.worst)
          .attr('x', 0)
          .attr('y', p.height - 5)
          .attr('width', p.width)
          .attr('height', 5)
          .attr('fill', colors.risk[facts.worst]);
      }
      if (facts.outliers) badge(g, p.width, facts.outliers);
    }
    head.append('title').text(`${grp.label}: ${grp.nodes} nodes; click to ${it.open ? 'shut' : 'open'}`);
    const toggle = () => {
      if (state.collapsed.has(it.id)) state.collapsed.delete(it.id);
      else state.collapsed.add(it.id);
      layout({ thenReveal: null });
    };
    head
      .on('click', (event) => {
        event.stopPropagation();
        toggle();
      })
      .on('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          toggle();
        }
      });
  }

  function nodeRows(n) {
    const rows = [['op', n.domain ? `${n.domain}.${n.op}` : n.op]];
    if (n.path) rows.push(['in', n.path]);
    if (n.layer >= 0) {
      const w = layerWhy(layers[n.layer], state.scheme);
      rows.push(['risk', `${w.risk} (${schemeLabel(state.scheme)})`]);
      rows.push(['why', w.text]);
    }
    rows.push(['inputs', n.inputs.filter(Boolean).slice(0, 4).join(', ') || '-']);
    rows.push(['outputs', n.outputs.filter(Boolean).slice(0, 4).join(', ') || '-']);
    return rows;
  }

  function recolour() {
    gItems.selectAll('g.ql-graph-node').each(function () {
      const g = d3.select(this);
      const n = model.nodes[Number(this.dataset.node)];
      const r = riskOfNode(n);
      g.classed('ql-plain', r == null).classed('ql-dark', r != null && darkFill(r));
      if (r != null) g.attr('data-risk', r);
      g.select('rect.ql-box').attr('fill', r != null ? colors.risk[r] : null);
    });
    gItems.selectAll('g.ql-graph-group[data-open=false]').each(function () {
      const facts = groupFacts(this.dataset.group);
      const strip = d3.select(this).select('rect.ql-risk-strip');
      if (facts.worst) {
        d3.select(this).attr('data-risk', facts.worst);
        strip.attr('data-risk', facts.worst).attr('fill', colors.risk[facts.worst]);
      }
    });
  }

  function markSelection() {
    gItems.selectAll('g.ql-graph-node').classed('ql-selected', function () {
      return state.selected != null && this.dataset.layer === String(state.selected);
    });
    const matchKeys = new Set(state.matches.map((id) => visible?.visibleOf(id)));
    gItems.selectAll('g.ql-graph-node').classed('ql-match', function () {
      return matchKeys.has(`n${this.dataset.node}`);
    });
    gItems.selectAll('g.ql-graph-group').classed('ql-match', function () {
      return this.dataset.open === 'false' && matchKeys.has(this.dataset.group);
    });
    if (state.selected != null && model.byLayer.has(state.selected)) {
      const n = model.nodes[model.byLayer.get(state.selected)];
      const l = layers[state.selected];
      info.text(`Selected: ${n.name} (${n.op}${n.path ? `, in ${n.path}` : ''}): ${layerWhy(l, state.scheme).text}`);
    }
  }

  // CLE (options.equalization, equalize()'s result): each equalized sequence as a thick line
  // through its layers' nodes, and each stop as a marker beside the node where a sequence
  // ended, its reason (stopReasonKey: without the names) beside it and whole in its <title>.
  function drawSequences() {
    gSeq.selectAll('*').remove();
    const eq = options.equalization;
    if (!eq || !visible) return;
    const keyOfLayerName = new Map();
    layers.forEach((l, k) => {
      if (model.byLayer.has(k)) keyOfLayerName.set(l.name, visible.visibleOf(model.byLayer.get(k)));
    });
    const keyOfNodeName = new Map();
    for (const n of model.nodes) if (!keyOfNodeName.has(n.name)) keyOfNodeName.set(n.name, visible.visibleOf(n.id));
    const center = (key) => {
      const p = key != null && state.positions.get(key);
      return p ? [p.x + p.width / 2, p.y + p.height / 2] : null;
    };
    (eq.sequences || []).forEach((s, k) => {
      const pts = [];
      for (const name of s.layers || []) {
        const c = center(keyOfLayerName.get(name));
        if (c && !(pts.length && pts[pts.length - 1][0] === c[0] && pts[pts.length - 1][1] === c[1])) pts.push(c);
      }
      if (pts.length >= 2)
        gSeq
          .append('path')
          .attr('class', 'ql-graph-sequence')
          .attr('data-sequence', k)
          .attr('d', d3.line().curve(d3.curveMonotoneY)(pts))
          .append('title')
          .text(`sequence ${k + 1}: ${s.layers.join(' → ')}`);
    });
    // One marker per box however many stops it holds (a shut group gathers many).
    const stopsAt = new Map();
    (eq.stops || []).forEach((st, k) => {
      const key = keyOfNodeName.get(st.node) ?? keyOfLayerName.get(st.layer);
      if (key == null) return;
      if (!stopsAt.has(key)) stopsAt.set(key, []);
      stopsAt.get(key).push({ ...st, k });
    });
    for (const [key, list] of stopsAt) {
      const p = state.positions.get(key);
      if (!p) continue;
      const g = gSeq
        .append('g')
        .attr('class', 'ql-graph-stop')
        .attr('data-stops', list.map((st) => st.k).join(' '))
        .attr('data-key', key)
        .attr('transform', `translate(${p.x + p.width + 3},${p.y + p.height / 2})`);
      g.append('path').attr('d', 'M12,-7 L0,0 L12,7 z').attr('fill', palette.vermillion);
      const what = list.length === 1 ? `stop: ${stopReasonKey(list[0].reason).key}` : `${list.length} stops`;
      g.append('text').attr('x', 15).attr('y', 4).attr('fill', palette.vermillion).text(clipEnd(what, 48));
      g.append('title').text(list.map((st) => `${st.layer}: ${st.reason}`).join('\n'));
    }
  }

  // ---------------------------------------------------------------- navigation
  function frameSize() {
    const r = frame.node().getBoundingClientRect();
    return { width: r.width || 800, height: r.height || 500 };
  }
  function fit(animate) {
    if (!state.size) return;
    const { width, height } = frameSize();
    const k = Math.min(1.5, Math.max(0.02, Math.min(width / (state.size.width + 40), height / (state.size.height + 40))));
    const t = d3.zoomIdentity
      .translate((width - state.size.width * k) / 2, Math.max(10, (height - state.size.height * k) / 2))
      .scale(k);
    (animate ? svg.transition().duration(250) : svg).call(zoom.transform, t);
  }
  // The first view: the top of the graph at a readable scale (the whole of it when it fits).
  function start() {
    const { width, height } = frameSize();
    const whole = Math.min(width / (state.size.width + 40), height / (state.size.height + 40));
    if (whole >= 0.6) return fit(false);
    const k = Math.max(0.6, Math.min(1, width / (state.size.width + 40)));
    const x = state.size.width * k < width ? (width - state.size.width * k) / 2 : 10;
    svg.call(zoom.transform, d3.zoomIdentity.translate(x, 10).scale(k));
  }
  function centerOn(key) {
    const p = state.positions.get(key);
    if (!p) return;
    const { width, height } = frameSize();
    const k = Math.max(state.transform?.k ?? 1, 0.8);
    const t = d3.zoomIdentity.translate(width / 2 - (p.x + p.width / 2) * k, height / 2 - (p.y + p.height / 2) * k).scale(k);
    svg.call(zoom.transform, t);
  }

  // Shows node `id`: opens the groups around it (laying out again when one was shut) and centres it.
  async function reveal(id) {
    const shut = ancestors(model, id).filter((g) => state.collapsed.has(g));
    const owner = model.ownerGroup.get(id) ?? null;
    if (shut.length) {
      for (const g of shut) state.collapsed.delete(g);
      await layout({ thenReveal: owner ?? `n${id}` });
    } else centerOn(owner ?? visible?.visibleOf(id) ?? `n${id}`);
    markSelection();
  }

  function choose(n) {
    if (n.layer >= 0) {
      state.selected = n.layer;
      markSelection();
      if (typeof options.onSelect === 'function') options.onSelect(n.layer);
    } else {
      info.text(`${n.name} (${n.domain ? `${n.domain}.` : ''}${n.op}${n.path ? `, in ${n.path}` : ''}): no weights analysed`);
    }
  }

  async function select(position) {
    state.selected = Number.isInteger(position) ? position : null;
    await ready;
    if (state.selected != null && model.byLayer.has(state.selected)) await reveal(model.byLayer.get(state.selected));
    else markSelection();
  }

  async function find(text) {
    const q = String(text || '')
      .trim()
      .toLowerCase();
    state.matches = q ? model.nodes.filter((n) => n.name.toLowerCase().includes(q)).map((n) => n.id) : [];
    state.match = -1;
    searchCount.text(q ? `${state.matches.length} ${state.matches.length === 1 ? 'match' : 'matches'}` : '');
    markSelection();
    if (state.matches.length) await next();
  }
  async function next() {
    if (!state.matches.length) return;
    state.match = (state.match + 1) % state.matches.length;
    searchCount.text(`${state.match + 1} of ${state.matches.length}`);
    await reveal(state.matches[state.match]);
  }
  let searchTimer = 0;
  search
    .on('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => find(search.property('value')), 150);
    })
    .on('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        clearTimeout(searchTimer);
        const q = search.property('value');
        if (q.trim().toLowerCase() === lastQuery) next();
        else find(q);
        lastQuery = q.trim().toLowerCase();
      }
    });
  let lastQuery = '';

  layout({ thenReveal: model.byLayer.has(state.selected) ? `n${model.byLayer.get(state.selected)}` : null }).then(() =>
    markSelection(),
  );

  return {
    ready,
    select,
    reveal,
    search: find,
    svg: () => svg.node(),
    destroy() {
      state.layoutSeq++;
      clearTimeout(searchTimer);
      svg.on('.zoom', null);
      root.remove();
    },
  };
}

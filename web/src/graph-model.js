// The model's graph as the graph view draws it, from analyze()'s `graph` (every node,
// sub-graphs included: src/graph/nodes.hpp) and its layers. No DOM, no d3, no layout.
//
// Groups make a large model navigable: a node holding sub-graphs (If, Loop, Scan) is a group
// of its bodies, each body a group of its nodes; within a graph, nodes whose names share a
// scope (the prefix before the last '/': '/layer1/layer1.0/conv1/Conv' is in
// '/layer1/layer1.0/conv1', itself in '/layer1/layer1.0' ...) form nested groups (a node with
// no scope among scoped ones joins the scope of its reader, else of its input's maker); a
// group with one member is dropped for that member. A group with more than MAX_MEMBERS members (a model
// whose names have no scopes) splits its nodes into runs of RUN consecutive nodes.
//
// buildGraphModel(analysis) -> model, or null when the analysis has no graph (a result saved
// before the graph was added). visibleGraph(model, collapsed) -> what to draw when the groups
// in `collapsed` (a Set of group ids) are drawn as one box each.

export const MAX_MEMBERS = 160;
export const RUN = 100;
// A model with more nodes than this opens with its groups collapsed, as many expanded,
// outermost first, as keep about this many boxes on screen.
export const COLLAPSE_ABOVE = 300;

const layerKey = (path, name) => `${path}\u0000${name}`;

/**
 * model: {
 *   nodes: [{id, name, op, domain, inputs, outputs, path, owner, layer (position in
 *            analysis.layers or -1), parent (group id or null)}],
 *   groups: Map id ('g<k>') -> {id, label, kind ('subgraph' | 'body' | 'scope' | 'run'), parent,
 *           members: [{type: 'node'|'group', id}], nodes (count of nodes inside), node (the
 *           owning node's id for 'subgraph')},
 *   top: [{type, id}] (the members of the main graph),
 *   ownerGroup: Map id of an If/Loop/Scan node -> its group's id,
 *   byLayer: Map position -> node id,
 *   edges: [[from, to, tensor]] node to node, by tensor name (a sub-graph reading an outer value too),
 *   inputs, outputs (the main graph's, tensor names)
 * }
 */
export function buildGraphModel(analysis) {
  const g = analysis?.graph;
  if (!g || !Array.isArray(g.nodes)) return null;
  const layerAt = new Map();
  (analysis.layers || []).forEach((l, k) => layerAt.set(layerKey(l.path || '', l.name), k));
  const nodes = g.nodes.map((n, id) => ({
    id,
    name: n.name,
    op: n.op,
    domain: n.domain,
    inputs: n.inputs,
    outputs: n.outputs,
    path: n.path,
    owner: n.owner,
    layer: layerAt.has(layerKey(n.path, n.name)) ? layerAt.get(layerKey(n.path, n.name)) : -1,
    parent: null,
  }));
  const byLayer = new Map();
  for (const n of nodes) if (n.layer >= 0) byLayer.set(n.layer, n.id);

  const groups = new Map();
  const ownerGroup = new Map(); // the id of an If/Loop/Scan node -> its group's id
  let seq = 0;
  // Group ids are 'g<k>' (safe in a CSS selector whatever the model's names).
  const addGroup = (label, kind, parent, extra = {}) => {
    const id = `g${seq++}`;
    const grp = { id, label, kind, parent, members: [], nodes: 0, ...extra };
    groups.set(id, grp);
    return grp;
  };

  // The graphs: the main one ('') and each body, keyed by path; their nodes in order.
  const graphs = new Map([['', []]]);
  const owners = new Set();
  for (const n of nodes) {
    if (!graphs.has(n.path)) graphs.set(n.path, []);
    graphs.get(n.path).push(n);
    if (n.owner >= 0) owners.add(n.owner);
  }
  // Each body's path is its owner's path + '/' + owner name + '/' + attribute.
  const bodiesOf = new Map();
  for (const [path, list] of graphs) {
    if (!path) continue;
    const owner = list[0].owner;
    if (!bodiesOf.has(owner)) bodiesOf.set(owner, []);
    bodiesOf.get(owner).push(path);
  }

  // A node whose name has no scope, in a graph where others have one (tf2onnx's 'Conv__618'
  // among 'StatefulPartitionedCall/model/conv2d/Relu'), is drawn in the scope of the node that
  // reads its output, else of the node that made its input: where the exporter had it.
  const scopesOf = new Map();
  for (const list of graphs.values()) {
    const own = list.map((n) => scopeParts(n.name));
    if (own.some((p) => p.length)) {
      const made = new Map();
      const read = new Map();
      list.forEach((n, k) => {
        for (const o of n.outputs) if (o) made.set(o, k);
        for (const i of n.inputs) if (i && !read.has(i)) read.set(i, k);
      });
      const borrowed = own.map((parts, k) => {
        if (parts.length) return parts;
        const n = list[k];
        for (const o of n.outputs) if (read.has(o) && own[read.get(o)].length) return own[read.get(o)];
        for (const i of n.inputs) if (made.has(i) && own[made.get(i)].length) return own[made.get(i)];
        return parts;
      });
      list.forEach((n, k) => scopesOf.set(n.id, borrowed[k]));
    }
  }

  // The members of one graph, grouped by name scope: returns [{type, id}] for its container.
  const scoped = (path, list, container) => {
    const root = { members: [], scopes: new Map() };
    for (const n of list) {
      const parts = scopesOf.get(n.id) || [];
      let at = root;
      let prefix = '';
      for (const p of parts) {
        prefix = prefix ? `${prefix}/${p}` : p;
        if (!at.scopes.has(p)) {
          const s = { prefix, label: p, members: [], scopes: new Map() };
          at.scopes.set(p, s);
          at.members.push({ type: 'scope', scope: s });
        }
        at = at.scopes.get(p);
      }
      at.members.push({ type: 'node', id: n.id });
    }
    const make = (s, parentId) =>
      s.members.map((m) => {
        if (m.type === 'node') return memberOfNode(m.id, parentId);
        const grp = addGroup(m.scope.prefix, 'scope', parentId);
        grp.members = make(m.scope, grp.id);
        return { type: 'group', id: grp.id };
      });
    return make(root, container);
  };
  // A node is a member itself, or (holding sub-graphs) a group of its bodies.
  const memberOfNode = (id, parentId) => {
    const n = nodes[id];
    n.parent = parentId;
    if (!owners.has(id)) return { type: 'node', id };
    const grp = addGroup(n.name, 'subgraph', parentId, { node: id });
    ownerGroup.set(id, grp.id);
    grp.members = bodiesOf.get(id).map((path) => {
      const body = addGroup(path.slice(path.lastIndexOf('/') + 1), 'body', grp.id, { path });
      body.members = scoped(path, graphs.get(path), body.id);
      return { type: 'group', id: body.id };
    });
    return { type: 'group', id: grp.id };
  };
  let top = scoped('', graphs.get(''), null);

  // Simplify: a scope group with one member is replaced by it; long member lists split in runs.
  const simplify = (members, parentId) => {
    const out = [];
    for (const m of members) {
      if (m.type === 'group') {
        const grp = groups.get(m.id);
        grp.members = simplify(grp.members, m.id);
        if (grp.kind === 'scope' && grp.members.length === 1) {
          const only = grp.members[0];
          groups.delete(m.id);
          reparent(only, parentId);
          out.push(only);
          continue;
        }
      }
      out.push(m);
    }
    if (out.length <= MAX_MEMBERS) return out;
    const runs = [];
    for (let k = 0; k < out.length; k += RUN) {
      const chunk = out.slice(k, k + RUN);
      const grp = addGroup(`${k + 1}–${k + chunk.length} of ${out.length}`, 'run', parentId);
      grp.members = chunk;
      for (const c of chunk) reparent(c, grp.id);
      runs.push({ type: 'group', id: grp.id });
    }
    return runs.length > MAX_MEMBERS ? simplify(runs, parentId) : runs;
  };
  const reparent = (m, parentId) => {
    if (m.type === 'node') nodes[m.id].parent = parentId;
    else groups.get(m.id).parent = parentId;
  };
  top = simplify(top, null);

  // Counts of nodes inside each group.
  const count = (members) => {
    let c = 0;
    for (const m of members) {
      if (m.type === 'node') c++;
      else {
        const grp = groups.get(m.id);
        grp.nodes = count(grp.members) + (grp.kind === 'subgraph' ? 1 : 0);
        c += grp.nodes;
      }
    }
    return c;
  };
  count(top);

  // Edges by tensor name: the producer of each value to each node reading it; a name is
  // looked up in the reader's graph, then in the graphs that enclose it.
  const producers = new Map();
  for (const n of nodes) for (const o of n.outputs) if (o) producers.set(layerKey(n.path, o), n.id);
  const pathOf = new Map([...graphs.keys()].map((p) => [p, p]));
  const enclosing = (path) => {
    if (!path) return null;
    const owner = graphs.get(path)[0].owner;
    return nodes[owner].path;
  };
  const edges = [];
  for (const n of nodes) {
    for (const t of n.inputs) {
      if (!t) continue;
      for (let p = pathOf.get(n.path); p != null; p = enclosing(p)) {
        const from = producers.get(layerKey(p, t));
        if (from !== undefined) {
          if (from !== n.id) edges.push([from, n.id, t]);
          break;
        }
      }
    }
  }
  return { nodes, groups, ownerGroup, top, byLayer, edges, inputs: g.inputs || [], outputs: g.outputs || [] };
}

// The scopes of a node name: '/a/b/Conv' -> ['a', 'b']; 'a/b/c' -> ['a', 'b']; 'Conv_3' -> [].
export function scopeParts(name) {
  const cut = name.lastIndexOf('/');
  if (cut <= 0) return [];
  return name
    .slice(0, cut)
    .split('/')
    .filter((p) => p.length);
}

// The groups enclosing node `id`, outermost first.
export function ancestors(model, id) {
  const out = [];
  for (let g = model.nodes[id].parent; g != null; g = model.groups.get(g).parent) out.unshift(g);
  return out;
}

// The collapsed set a model opens with: nothing collapsed up to COLLAPSE_ABOVE nodes; above
// it every group collapsed, the groups around the nodes in `show` (the selected layer's) opened,
// then others opened outermost first while the boxes shown stay within `budget`.
export function defaultCollapsed(model, budget = 150, show = []) {
  if (model.nodes.length <= COLLAPSE_ABOVE) return new Set();
  const collapsed = new Set(model.groups.keys());
  let shown = model.top.length;
  const open = (id) => {
    collapsed.delete(id);
    shown += model.groups.get(id).members.length; // one box becomes its members, in a box of its own
  };
  for (const id of show) for (const g of ancestors(model, id)) if (collapsed.has(g)) open(g);
  const queue = model.top.filter((m) => m.type === 'group').map((m) => m.id);
  while (queue.length) {
    const id = queue.shift();
    const grp = model.groups.get(id);
    if (collapsed.has(id)) {
      if (shown + grp.members.length > budget) continue;
      open(id);
    }
    for (const m of grp.members) if (m.type === 'group') queue.push(m.id);
  }
  return collapsed;
}

/**
 * What to draw with the groups in `collapsed` shut: {
 *   items: [{type: 'node'|'group', id, parent (expanded group id or null), open (groups)}]
 *          in drawing order (a group before its members),
 *   edges: [{from, to, tensors}] between visible items (node ids as 'n<id>', groups by id), deduplicated,
 *   visibleOf: (nodeId) -> the item key that shows it ('n<id>' or a collapsed group's id)
 * }
 */
export function visibleGraph(model, collapsed) {
  const items = [];
  const rep = new Array(model.nodes.length);
  const walk = (members, parent, hiddenIn) => {
    for (const m of members) {
      if (m.type === 'node') {
        rep[m.id] = hiddenIn ?? `n${m.id}`;
        if (!hiddenIn) items.push({ type: 'node', id: m.id, key: `n${m.id}`, parent });
        continue;
      }
      const grp = model.groups.get(m.id);
      const open = !hiddenIn && !collapsed.has(m.id);
      if (!hiddenIn) items.push({ type: 'group', id: m.id, key: m.id, parent, open });
      if (grp.kind === 'subgraph') {
        // Shut, the If/Loop node is its group's box; open, a node of its own at the top of it
        // (edges join nodes and shut groups only: the layout takes no edge to an open group).
        if (hiddenIn || !open) rep[grp.node] = hiddenIn ?? m.id;
        else {
          rep[grp.node] = `n${grp.node}`;
          items.push({ type: 'node', id: grp.node, key: `n${grp.node}`, parent: m.id });
        }
      }
      walk(grp.members, open ? m.id : parent, hiddenIn ?? (open ? null : m.id));
    }
  };
  walk(model.top, null, null);
  const seen = new Map();
  const edges = [];
  for (const [a, b, t] of model.edges) {
    const from = rep[a];
    const to = rep[b];
    if (from === to) continue;
    const key = `${from}\u0000${to}`;
    if (seen.has(key)) {
      const e = seen.get(key);
      if (e.tensors.length < 4) e.tensors.push(t);
      continue;
    }
    const e = { from, to, tensors: [t] };
    seen.set(key, e);
    edges.push(e);
  }
  return { items, edges, visibleOf: (id) => rep[id] };
}

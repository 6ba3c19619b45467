// Layer names a person can read. Exporters give every node a long path whose start is the
// same for all of them ("StatefulPartitionedCall/functional_1/..." from tf2onnx, "/model/"
// from PyTorch); where names differ is at their end. So a short name drops the prefix
// that all the names share, cut at a separator, and never cuts the end. The full name is
// kept for tooltips and the copyable detail. No DOM, no d3.

// Characters after which a name may be cut: scope separators only ('Conv__293' and
// 'Conv__246' share 'Conv__', which is no scope and says what the layer is).
const SEPARATORS = new Set(['/']);

// The longest prefix that every name in `names` starts with, ending just after a separator
// ('' when the names share none, or when there are fewer than 2 names). A prefix that would
// leave some name empty is shortened to the separator before it.
export function sharedPrefix(names) {
  const list = [...names].map(String);
  if (list.length < 2) return '';
  let prefix = list[0];
  for (const n of list) {
    let k = 0;
    const m = Math.min(prefix.length, n.length);
    while (k < m && prefix.charCodeAt(k) === n.charCodeAt(k)) k++;
    prefix = prefix.slice(0, k);
    if (!prefix) return '';
  }
  // Cut after the last separator that leaves every name something of its own.
  for (let k = prefix.length; k > 0; k--) {
    if (!SEPARATORS.has(prefix[k - 1])) continue;
    if (list.every((n) => n.length > k)) return prefix.slice(0, k);
  }
  return '';
}

// A shortener for one set of names: short(name) drops the shared prefix (when it is at
// least `min` characters, so a short shared start such as "conv" stays), and shows that
// something was dropped with a leading '…'. `prefix` is what was dropped ('' for none).
export function nameShortener(names, { min = 6 } = {}) {
  const p = sharedPrefix(names);
  const prefix = p.length >= min ? p : '';
  return {
    prefix,
    short: (name) => {
      const s = String(name ?? '');
      return prefix && s.startsWith(prefix) && s.length > prefix.length ? `…${s.slice(prefix.length)}` : s;
    },
  };
}

// Which sub-graph a layer is in, for a row: 'in If_0 then_branch' from its `path`
// ("If_0/then_branch", analysis layers), '' for the main graph.
export function subgraphText(layer) {
  const p = layer && layer.path;
  if (!p) return '';
  return `in ${String(p).split('/').join(' › ')}`;
}

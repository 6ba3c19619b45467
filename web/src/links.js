// Deep links: what the page shows, held in the URL's hash, so a link (or a saved report's
// file:// URL with its hash) opens the same view of the same model once it is loaded, and
// Back/Forward step through what was shown.
//
//   #view=layer&layer=<encodeURIComponent(full layer name)>&scheme=int8-pc
//
// VIEWS is the one table of the page's views (the app's tabs are made from it): a view
// joins the links, the tabs and the keyboard by adding one entry here. Pure functions,
// no DOM: the app applies what parseLink() returns and writes what formatLink() makes.
import { blockSizeOf, isScheme, SCHEMES } from './schemes.js';

// key: the hash's `view=` value and the tab's id (ql-tab-<key>); label: the tab's text.
export const VIEWS = [
  { key: 'model', label: 'Model' },
  { key: 'graph', label: 'Graph' },
  { key: 'layer', label: 'Layer' },
  { key: 'equalization', label: 'Equalization' },
  { key: 'compression', label: 'Compression' },
  { key: 'compare', label: 'Compare' },
];
export const viewKeys = () => VIEWS.map((v) => v.key);

// Schemes in a link: short, readable names (int8-pt, int8-pc, int4-pt, int4-pc, int4-b32,
// int4-b128, int4-b<N> for an analysis made with another blockSize).
const SLUGS = {
  int8PerTensor: 'int8-pt',
  int8PerChannel: 'int8-pc',
  int4PerTensor: 'int4-pt',
  int4PerChannel: 'int4-pc',
};
export function schemeSlug(scheme) {
  if (SLUGS[scheme]) return SLUGS[scheme];
  const b = blockSizeOf(scheme);
  return b ? `int4-b${b}` : String(scheme);
}
// The scheme a slug names (the scheme's own key is accepted too), or null.
export function schemeOfSlug(slug) {
  const s = String(slug);
  const known = Object.keys(SLUGS).find((k) => SLUGS[k] === s);
  if (known) return known;
  const m = /^int4-b([1-9][0-9]*)$/.exec(s);
  if (m) return `int4Block${m[1]}`;
  return isScheme(s) ? s : null;
}

// The hash for a state { view, layer (full name, or null), scheme }: '#view=...'.
export function formatLink({ view, layer = null, scheme = null }) {
  const parts = [`view=${encodeURIComponent(view)}`];
  if (layer !== null && layer !== undefined) parts.push(`layer=${encodeURIComponent(layer)}`);
  if (scheme) parts.push(`scheme=${encodeURIComponent(schemeSlug(scheme))}`);
  return `#${parts.join('&')}`;
}

// What a hash asks for: { view, layer, scheme } (each null when absent) and `problems`,
// [{ code, message }] for what it names that no view or scheme is (messages for people).
// A hash that is not a link of ours (empty, '#', an anchor) gives nulls and no problem.
// `views` are the view keys the page has (default: VIEWS).
export function parseLink(hash, { views = viewKeys() } = {}) {
  const out = { view: null, layer: null, scheme: null, problems: [] };
  const text = String(hash || '').replace(/^#/, '');
  if (!text) return out;
  const fields = new Map();
  for (const part of text.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    let value;
    try {
      value = decodeURIComponent(raw);
    } catch {
      out.problems.push({ code: 'BAD_LINK', message: `the link's ${key} is not valid URL encoding (${raw.slice(0, 80)})` });
      continue;
    }
    fields.set(key, value);
  }
  if (![...fields.keys()].some((k) => k === 'view' || k === 'layer' || k === 'scheme')) return out; // an anchor, not a link
  if (fields.has('view')) {
    const v = fields.get('view');
    if (views.includes(v)) out.view = v;
    else
      out.problems.push({
        code: 'UNKNOWN_VIEW',
        message: `the link asks for a view "${v}", which this page does not have (it has ${views.join(', ')})`,
      });
  }
  if (fields.has('layer')) out.layer = fields.get('layer');
  if (fields.has('scheme')) {
    const s = schemeOfSlug(fields.get('scheme'));
    if (s) out.scheme = s;
    else
      out.problems.push({
        code: 'UNKNOWN_SCHEME',
        message: `the link names a scheme "${fields.get('scheme')}", which is not one of ${SCHEMES.map(schemeSlug).join(', ')}`,
      });
  }
  return out;
}

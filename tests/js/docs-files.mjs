// The documentation files the tests read (README.md and docs/*.md), and what is in them:
// tested examples, links and headings. Shared by readme.test.mjs and docs.test.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { root } from './helpers.mjs';

// Paths relative to the repository root, README.md first.
export function docFiles() {
  const dir = path.join(root, 'docs');
  const docs = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', ...docs];
}

export const readDoc = (file) => fs.readFileSync(path.join(root, file), 'utf8');
const lineAt = (text, index) => text.slice(0, index).split('\n').length;

// A fenced block right after `<!-- tested: KIND -->` (see readme.test.mjs).
export function examplesOf(file) {
  const text = readDoc(file);
  return [...text.matchAll(/<!-- tested: (\w+) -->\s*\n```\w*\n([\s\S]*?)\n```/g)].map((m, k) => ({
    kind: m[1],
    code: m[2],
    line: lineAt(text, m.index) + 1,
    k,
  }));
}

// The text outside fenced and indented code blocks, with each line's number; code is
// blanked so that links and headings are only looked for in prose.
function proseLines(text) {
  const out = [];
  let fence = null;
  text.split('\n').forEach((line, i) => {
    const f = /^\s*(```+|~~~+)/.exec(line);
    if (fence) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
      return;
    }
    if (f) {
      fence = f[1];
      return;
    }
    if (/^( {4}|\t)/.test(line)) return; // an indented code block (the docs use them for output)
    out.push({ line: i + 1, text: line.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length)) });
  });
  return out;
}

// Inline links and images `[text](target)`, with `target` as written (no title).
export function linksOf(file) {
  const links = [];
  for (const { line, text } of proseLines(readDoc(file))) {
    for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ line, target: m[1] });
  }
  return links;
}

// GitHub's anchors for the file's headings: the text (a link's text, code and emphasis marks
// dropped with the rest of the punctuation other than '-' and '_'), lower case, each space a
// '-'; a repeated anchor is suffixed -1, -2, ...
export function anchorsOf(file) {
  const seen = new Map();
  const anchors = new Set();
  let fence = null;
  for (const line of readDoc(file).split('\n')) {
    const f = /^\s*(```+|~~~+)/.exec(line);
    if (fence) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
      continue;
    }
    if (f) {
      fence = f[1];
      continue;
    }
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = h[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link: its text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n ? `${base}-${n}` : base);
  }
  return anchors;
}

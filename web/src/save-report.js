// saveReport(result): the self-contained HTML report of an analysis (with, where
// given, its equalization and a comparison), the same file the app's "Save report"
// writes. The page's code comes from the built app (web/dist/app/index.html): read
// from disk under Node, taken from the running page inside the app.
import { isNode, nodeImport } from './node.js';
import { appParts, reportData, reportPieces } from './report.js';
import { VERSION } from './version.js';

async function builtApp() {
  if (typeof document === 'object' && document.getElementById('ql-main') && document.getElementById('ql-style')) {
    return { css: document.getElementById('ql-style').textContent, script: document.getElementById('ql-main').textContent };
  }
  const url = new URL('../dist/app/index.html', import.meta.url);
  if (isNode) {
    const fs = await nodeImport('fs');
    if (!fs.existsSync(url)) throw new Error('web/dist/app/index.html is missing: run `npm run build`');
    return appParts(fs.readFileSync(url, 'utf8'));
  }
  return appParts(await (await fetch(url)).text());
}

/**
 * @param result  {analysis, equalization?, comparison?, analysisB?, compression? (compressibility()'s result)}
 * @returns       Promise<string>: the HTML file
 */
export async function saveReport(result, options = {}) {
  return [...(await saveReportPieces(result, options))].join('');
}

/**
 * saveReport's file as pieces of text (about 1 MB each), to be written one at a time (to a
 * file, or a Blob made of them) without the whole text in memory: an LLM's report is
 * hundreds of MB.
 * @returns Promise<Iterable<string>>
 */
export async function saveReportPieces({ analysis, equalization, comparison, analysisB, compression }, { title } = {}) {
  const parts = await builtApp();
  return reportPieces({
    ...parts,
    data: reportData({ analysis, equalization, comparison, analysisB, compression, version: VERSION }),
    title: title || `QuantLens: ${analysis.model.name}`,
  });
}

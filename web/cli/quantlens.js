#!/usr/bin/env node
// quantlens: command-line front end over the WASM core (Node 20+).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  analyze,
  compare,
  compress,
  compressibility,
  compressionRisk,
  equalize,
  PLAN_RATIOS,
  formatComparison,
  formatDb,
  formatEqualization,
  formatProgress,
  formatTable,
  toJSON,
  QuantLensError,
} from '../src/index.js';
import {
  analysisChannelsCsv,
  analysisLayersCsv,
  comparisonChannelsCsv,
  comparisonPairsCsv,
  equalizationCsv,
} from '../src/export/csv.js';
import { METRICS, modelExplorerNodeData } from '../src/export/model-explorer.js';
import { selectComparison, selectEqualization } from '../src/export/select.js';
import { saveReportPieces } from '../src/save-report.js';
import { formatSkipped } from '../src/format.js';
import { writeJSON } from '../src/json-stream.js';
import { layerLabel } from '../src/presentation.js';
import { SCHEMES, blockSizeOf, schemeLabel } from '../src/schemes.js';

const EXIT_STATUS =
  'Exit status: 0 done, 1 internal failure, 2 bad input or usage (unreadable or malformed model,\nmissing or unsafe external data, bad option), 3 a --fail-below-sqnr threshold failed.';
const PROGRESS_HELP =
  'A progress bar is drawn on stderr when stderr is a terminal and the work takes more than\nhalf a second; it is erased at the end (QUANTLENS_PROGRESS=0 turns it off, =1 shows it at once).';

// Exit status 2: the input is at fault.
const BAD_INPUT = new Set([
  'INVALID_MODEL',
  'INVALID_GRAPH',
  'UNSAFE_EXTERNAL_DATA',
  'UNSUPPORTED_DTYPE',
  'MISSING_EXTERNAL_DATA',
  'IO_ERROR',
  'INVALID_ARGUMENT',
  'UNSUPPORTED',
  'USAGE',
]);
const EXIT = { ok: 0, internal: 1, badInput: 2, threshold: 3 };

// Every option of every command, declared once: its flag (and short flag), the name of
// its value (none for a switch), and how the value is read (checked as it is parsed).
// Key order is the order in which "COMMAND does not take ..." is reported.
const OPTIONS = {
  json: { flag: '--json' },
  format: { flag: '--format', arg: 'FORMAT' },
  metric: { flag: '--metric', arg: 'METRIC' },
  top: {
    flag: '--top',
    arg: 'N',
    read: (v) => Number(v),
    check: (n) => Number.isInteger(n) && n > 0,
    says: '--top takes a positive integer',
  },
  bins: { flag: '--bins', arg: 'N', read: (v) => Number(v) },
  layers: { flag: '--layers', arg: 'REGEX' },
  failBelow: {
    flag: '--fail-below-sqnr',
    arg: 'DB',
    // DB, or SCHEME:DB (the scheme as --sqnr-scheme names it; checked with the command's options)
    read: (v) => {
      const m = /^([A-Za-z0-9]+):(.*)$/.exec(v);
      const db = (m ? m[2] : v).trim() === '' ? NaN : Number(m ? m[2] : v);
      return m ? { scheme: m[1], db } : db;
    },
    check: (v) => Number.isFinite(typeof v === 'object' ? v.db : v),
    says: '--fail-below-sqnr takes a number of dB, or SCHEME:DB',
  },
  sqnrScheme: { flag: '--sqnr-scheme', arg: 'SCHEME' },
  // Read as a number and checked by the core (analyze's blockSize), as for every caller.
  blockSize: { flag: '--block-size', arg: 'N', read: (v) => (v.trim() === '' ? NaN : Number(v)) },
  // Read as a number and checked by analyze() (its workers option).
  workers: { flag: '--workers', arg: 'N', read: (v) => (v.trim() === '' ? NaN : Number(v)) },
  output: { flag: '--output', short: '-o', arg: 'FILE' },
  keepRelu6: { flag: '--keep-relu6' },
  noBiasAbsorption: { flag: '--no-bias-absorption' },
  iterations: { flag: '--iterations', arg: 'N', read: (v) => Number(v) },
  equalize: { flag: '--equalize' },
  compare: { flag: '--compare', arg: 'OTHER.onnx' },
  // Read as a number and checked by compress() (its ratio).
  ratio: { flag: '--ratio', arg: 'R', read: (v) => (v.trim() === '' ? NaN : Number(v)) },
  by: { flag: '--by', arg: 'params|macs' },
  method: { flag: '--method', arg: 'svd|prune|auto' },
  risk: { flag: '--risk' },
  compressibility: { flag: '--compressibility' },
  help: { flag: '--help', short: '-h' },
};
const HELP_LINE = ['help', 'this text'];
const WORKERS_LINE = [
  'workers',
  'analyse layers in N worker threads at once (default: one per core, at most 8,',
  'when the weights come to 64 MB or more; 1: in the main thread); same results',
];

// Each command: its usage line, what it does, the formats it writes, and its option table,
// [option, help lines...] in the order of the help text. The table is both what the
// command accepts (checkOptions) and what its help lists (commandUsage).
const COMMANDS = {
  analyze: {
    usage: 'quantlens analyze MODEL.onnx [options]',
    about: 'Prints the riskiest weight layers of an ONNX model for INT8/INT4 quantization.',
    formats: ['table', 'json', 'csv', 'csv-channels', 'model-explorer'],
    options: [
      [
        'format',
        'table (default), json (schema quantlens.analysis/1), csv (one row per layer,',
        'riskiest first), csv-channels (one row per layer and output channel),',
        "model-explorer (node data for Google's Model Explorer; see --metric)",
      ],
      ['json', 'the same as --format json'],
      [
        'metric',
        'with --format model-explorer: int8PerTensor (default), int8PerChannel,',
        'int4PerTensor, int4PerChannel, int4Block32, int4Block128 (SQNR in dB) or',
        'outliers (outlier channel count)',
      ],
      ['top', 'rows in the table (default 20)'],
      ['bins', 'histogram bins per layer (default 128)'],
      [
        'blockSize',
        'also measure INT4 with one scale per block of N weights along the reduction',
        'axis (scheme int4Block<N>); blocks of 32 and 128 are always measured',
      ],
      ['layers', 'select layers whose name matches (JavaScript RegExp, unanchored);', 'the other layers are not read'],
      [
        'failBelow',
        "exit 3 when a selected layer's INT8 per-tensor SQNR (or --sqnr-scheme's) is",
        'below DB (or the layer could not be analysed); the offenders are listed on stderr',
      ],
      [
        'sqnrScheme',
        'the scheme --fail-below-sqnr judges: int8PerTensor (default), int8PerChannel,',
        'int4PerTensor, int4PerChannel, int4Block32, int4Block128, int4Block<N> (with',
        '--block-size N); --fail-below-sqnr SCHEME:DB says the same',
      ],
      WORKERS_LINE,
      [
        'compressibility',
        "also each layer's compressibility curves (weight SQNR at fixed fractions of its",
        'parameters kept, as compress plans them; slower: every layer is factored); in',
        '--json as layers[].compressibility; the table adds the SQNR at 50% kept (@50%)',
      ],
      ['method', 'with --compressibility: svd (default), prune or auto (SVD and channel pruning)'],
      HELP_LINE,
    ],
    footer: `${PROGRESS_HELP}\n\n${EXIT_STATUS}`,
  },
  equalize: {
    usage: 'quantlens equalize MODEL.onnx -o OUT.onnx [options]',
    about:
      'Folds BatchNorm, equalizes the weight ranges of consecutive layers (Cross Layer\nEqualization, Nagel et al. 2019) and writes a model that computes the same function.\nWithout -o, reports what would change and writes nothing.',
    formats: ['table', 'json', 'csv'],
    options: [
      ['output', 'where to write the equalized model'],
      ['keepRelu6', 'keep ReLU6 (Clip 0..6): sequences stop there instead of replacing it by Relu'],
      ['noBiasAbsorption', 'do not absorb high biases into the next layer'],
      ['iterations', 'most sweeps over each sequence (default 50; 0 folds BatchNorm and replaces ReLU6 only)'],
      ['format', 'table (default), json (schema quantlens.equalization/1), csv (one row per changed layer)'],
      ['json', 'the same as --format json'],
      ['top', 'layers in the table (default 40)'],
      [
        'layers',
        'select layers whose name matches (JavaScript RegExp, unanchored);',
        'the report lists only the selected changed layers (the whole model is still',
        'equalized and written) and --fail-below-sqnr judges only the selected layers',
      ],
      [
        'failBelow',
        'exit 3 when a selected layer of the equalized model has an INT8 per-tensor SQNR',
        "(or --sqnr-scheme's) below DB (every layer of the output is analysed, not only",
        'the changed ones)',
      ],
      [
        'sqnrScheme',
        'the scheme --fail-below-sqnr judges: int8PerTensor (default), int8PerChannel,',
        'int4PerTensor, int4PerChannel, int4Block32, int4Block128, int4Block<N> (with',
        '--block-size N); --fail-below-sqnr SCHEME:DB says the same',
      ],
      ['blockSize', 'with --fail-below-sqnr: also measure INT4 blocks of N weights (int4Block<N>)'],
      HELP_LINE,
    ],
    footer: `${PROGRESS_HELP}\n\n${EXIT_STATUS} Exit 0 also when there is nothing to equalize.`,
  },
  compare: {
    usage: 'quantlens compare A.onnx B.onnx [options]',
    about:
      "Pairs the weight layers of two models (same weight name, then node name, then position)\nand prints, for each pair, how far B's weights (dequantized when B is quantized) are from A's.",
    formats: ['table', 'json', 'csv', 'csv-channels'],
    options: [
      [
        'format',
        'table (default; lowest SQNR first), json (schema quantlens.comparison/1),',
        'csv (one row per pair, then one per unmatched layer),',
        'csv-channels (one row per pair and output channel)',
      ],
      ['json', 'the same as --format json'],
      ['top', 'pairs in the table (default 40)'],
      [
        'layers',
        "select the pairs where A's or B's layer name matches (JavaScript RegExp,",
        'unanchored), and the unmatched layers whose name matches',
      ],
      [
        'failBelow',
        "exit 3 when a selected pair's SQNR (B against A) is below DB, or the pair",
        'could not be compared; the offenders are listed on stderr',
      ],
      [
        'workers',
        'compare pairs in N worker threads at once (default: one per core, at most 8,',
        'when the pairs read 64 MB or more; 1: in the main thread); same results',
      ],
      HELP_LINE,
    ],
    footer: `${PROGRESS_HELP}\n\n${EXIT_STATUS}`,
  },
  compress: {
    usage: 'quantlens compress MODEL.onnx --ratio R -o OUT.onnx [options]',
    about:
      'Plans, from the weights alone, how far to compress each weight layer so that the model\nkeeps a fraction R of its weight parameters (or MACs), and writes the compressed model:\nweight SVD (Gemm, MatMul, 1x1 Conv) and spatial SVD (k x k Conv) split a layer into two.\nThe plan takes the ranks whose relative weight noise 10^(-SQNR/10), summed over the\nlayers, is the least within the target. Without -o, prints the plan and writes nothing.',
    formats: ['table', 'json'],
    options: [
      ['ratio', 'the fraction to keep, in (0, 1] (required)'],
      ['output', 'where to write the compressed model'],
      [
        'by',
        'params (default): R of all weight-layer parameters, the incompressible ones included;',
        'macs: R of their multiply-accumulates (needs static input shapes)',
      ],
      ['method', 'svd (default); prune and auto (SVD or channel pruning) where the build has pruning'],
      ['format', 'table (default), json (schema quantlens.compression/1)'],
      ['json', 'the same as --format json'],
      ['top', 'layers in the table (default 40)'],
      [
        'risk',
        "also analyse the compressed model: its high-risk layers and each compressed layer's",
        'INT8/INT4 SQNR beside the original\'s (JSON: "risk", as compressionRisk() gives it)',
      ],
      HELP_LINE,
    ],
    footer: `${PROGRESS_HELP}\n\n${EXIT_STATUS}`,
  },
  report: {
    usage: 'quantlens report MODEL.onnx -o REPORT.html [options]',
    about:
      'Writes one self-contained HTML file (code, styles and data inline; it makes no network\nrequest) with the interactive views of the app: model, layer, and where asked,\nequalization and comparison. The same file as the app\'s "Save report".',
    options: [
      ['output', 'where to write the report (required)'],
      ['equalize', 'run Cross Layer Equalization and include what it changes'],
      ['keepRelu6', 'with --equalize: keep ReLU6, ending sequences there'],
      ['noBiasAbsorption', 'with --equalize: no high-bias absorption'],
      ['compare', 'compare the weights with a second model (e.g. its QDQ or QLinearConv quantized copy)'],
      [
        'compressibility',
        "include the Compression tab: every layer's curves and a plan at each target from",
        '5% to 100% (as the app\'s "Compute compressibility")',
      ],
      ['method', 'with --compressibility: svd (default), prune or auto'],
      ['bins', 'histogram bins per layer (default 128)'],
      ['blockSize', 'also measure INT4 blocks of N weights (int4Block<N>; 32 and 128 always are)'],
      [
        'layers',
        'select layers whose name matches (JavaScript RegExp, unanchored);',
        'the report shows only those layers (and the pairs and equalized layers',
        'whose name matches)',
      ],
      WORKERS_LINE,
      HELP_LINE,
    ],
    footer: `${PROGRESS_HELP}\n\n${EXIT_STATUS}`,
  },
};

const MAIN_USAGE = `Usage: quantlens <command> [options]

Commands:
  analyze MODEL.onnx      per-channel weight ranges, outlier channels and INT8/INT4 SQNR
  equalize MODEL.onnx     Cross Layer Equalization: writes the equalized model, reports what changed
  compare A.onnx B.onnx   per-layer differences between the weights of two models (e.g. float and QDQ)
  compress MODEL.onnx     a data-free SVD compression plan for a target size, and the compressed model
  report MODEL.onnx       one self-contained HTML file with the app's interactive views, for offline reading
  help [COMMAND]          this text, or the options of a command

Run 'quantlens <command> --help' (or 'quantlens help <command>') for the options of a command.

${EXIT_STATUS}`;

// A command's help, from its option table: each option's flags in a column of 26
// characters, its help lines beside them.
const HELP_COLUMN = 26;
function commandUsage(cmd) {
  const c = COMMANDS[cmd];
  const rows = c.options.map(([key, ...help]) => {
    const o = OPTIONS[key];
    const flags = `  ${o.short ? `${o.short}, ` : ''}${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
    return `${flags.padEnd(HELP_COLUMN)}${help.join(`\n${' '.repeat(HELP_COLUMN)}`)}`;
  });
  return `Usage: ${c.usage}\n\n${c.about}\n\nOptions:\n${rows.join('\n')}\n\n${c.footer}`;
}
const usageOf = (cmd) => (COMMANDS[cmd] ? commandUsage(cmd) : MAIN_USAGE);

const oneLine = (s) => String(s).replace(/[\u0000-\u001f\u007f]+/g, ' ');

function usageError(msg, cmd) {
  return new QuantLensError('USAGE', `${msg}\n${usageOf(cmd)}`);
}

// The arguments after the command, read with node's util.parseArgs against every
// option (so an option of another command is reported as not taken, not as unknown).
// Values are read and checked in the order given; whether the command takes each
// option is checked by checkOptions, after --help.
const PARSE_OPTIONS = Object.fromEntries(
  Object.values(OPTIONS).map((o) => [
    o.flag.slice(2),
    {
      type: o.arg ? 'string' : 'boolean',
      ...(o.short ? { short: o.short.slice(1) } : {}),
    },
  ]),
);
const BY_NAME = new Map(Object.entries(OPTIONS).map(([key, o]) => [o.flag.slice(2), key]));

function parseCommandLine(cmd, args) {
  const opts = { positional: [] };
  const { tokens } = parseArgs({ args, options: PARSE_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') {
      opts.positional.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue; // '--': what follows is positional
    const key = BY_NAME.get(t.name);
    const o = OPTIONS[key];
    if (!o || (!o.arg && t.value !== undefined)) throw usageError(`unknown option ${args[t.index]}`, cmd);
    if (!o.arg) {
      opts[key] = true;
      continue;
    }
    if (t.value === undefined) throw usageError(`${t.rawName} needs a value`, cmd);
    const v = o.read ? o.read(t.value) : t.value;
    if (o.check && !o.check(v)) throw usageError(o.says, cmd);
    opts[key] = v;
  }
  return opts;
}

// Options a command does not take are usage errors, not silently ignored.
function checkOptions(cmd, opts) {
  const c = COMMANDS[cmd];
  const takes = new Set(c.options.map(([key]) => key));
  for (const [key, o] of Object.entries(OPTIONS)) {
    if (opts[key] !== undefined && !takes.has(key)) throw usageError(`${cmd} does not take ${o.short ?? o.flag}`, cmd);
  }
  if (c.formats) {
    if (opts.json && opts.format !== undefined && opts.format !== 'json')
      throw usageError(`--json and --format ${opts.format} disagree`, cmd);
    opts.format = opts.json ? 'json' : (opts.format ?? 'table');
    if (!c.formats.includes(opts.format)) throw usageError(`--format takes one of ${c.formats.join(', ')}`, cmd);
  }
  if (opts.metric !== undefined) {
    if (opts.format !== 'model-explorer') throw usageError('--metric goes with --format model-explorer', cmd);
    if (!METRICS.includes(opts.metric)) throw usageError(`--metric takes one of ${METRICS.join(', ')}`, cmd);
  }
  if (typeof opts.failBelow === 'object') {
    if (opts.sqnrScheme !== undefined && opts.sqnrScheme !== opts.failBelow.scheme)
      throw usageError(`--fail-below-sqnr ${opts.failBelow.scheme}:... and --sqnr-scheme ${opts.sqnrScheme} disagree`, cmd);
    opts.sqnrScheme = opts.failBelow.scheme;
    opts.failBelow = opts.failBelow.db;
  }
  if (opts.sqnrScheme !== undefined) {
    if (opts.failBelow === undefined) throw usageError('--sqnr-scheme names the scheme --fail-below-sqnr judges', cmd);
    const n = blockSizeOf(opts.sqnrScheme);
    if (!SCHEMES.includes(opts.sqnrScheme) && n === null)
      throw usageError(`--sqnr-scheme takes one of ${SCHEMES.join(', ')} or int4Block<N> (with --block-size N)`, cmd);
    if (!SCHEMES.includes(opts.sqnrScheme) && opts.blockSize !== n)
      throw usageError(`--sqnr-scheme ${opts.sqnrScheme} needs --block-size ${n}`, cmd);
  }
  if (opts.layers !== undefined) {
    try {
      opts.layersRe = new RegExp(opts.layers);
    } catch (e) {
      throw usageError(`--layers: ${e.message}`, cmd);
    }
  }
}

// A progress bar on stderr: only when stderr is a terminal, only once the work has
// taken PROGRESS_DELAY ms (small models never flash one), redrawn at most every
// PROGRESS_INTERVAL ms, erased by done(). QUANTLENS_PROGRESS=0 turns it off, =1 draws it
// from the start (still only on a terminal). =always is for tests: every progress event
// is drawn, with neither the delay nor the redraw limit, so what appears does not depend
// on how fast the machine is (still only on a terminal).
const PROGRESS_MODE = process.env.QUANTLENS_PROGRESS;
const PROGRESS_DELAY = PROGRESS_MODE === '1' || PROGRESS_MODE === 'always' ? 0 : 500;
const PROGRESS_INTERVAL = PROGRESS_MODE === 'always' ? 0 : 100;
function progressBar(stream = process.stderr) {
  const enabled = !!stream.isTTY && PROGRESS_MODE !== '0';
  const start = Date.now();
  let last = -Infinity;
  let drawn = false;
  let prefix = '';
  const draw = (p) => {
    const now = Date.now();
    if (now - start < PROGRESS_DELAY || now - last < PROGRESS_INTERVAL) return;
    last = now;
    const label = prefix + (p.side ? `${p.phase} ${p.side.toUpperCase()}` : p.phase);
    stream.write(`\r${formatProgress(p, { width: stream.columns || 80, label })}\x1b[K`);
    drawn = true;
  };
  return {
    enabled,
    // onProgress for analyze/equalize/compare; `step` labels a step of a longer job.
    onProgress: (step = '') =>
      enabled
        ? (p) => {
            prefix = step ? `${step}: ` : '';
            // analyze() also reports bytes read within a large layer (`reading`): the bar
            // counts finished layers, so it draws those only.
            if (!p.reading) draw(p);
          }
        : undefined,
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
let bar = null;
const newBar = () => {
  bar = progressBar();
  return bar;
};

const write = (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

// --fail-below-sqnr: the offenders, worst first, on stderr. Returns the exit status.
function judge(items, threshold, what) {
  const offenders = items.filter((x) => x.error || !(x.sqnr >= threshold));
  if (!offenders.length) return EXIT.ok;
  offenders.sort((x, y) => (x.error ? -1 : y.error ? 1 : (x.sqnr ?? -Infinity) - (y.sqnr ?? -Infinity)));
  const width = Math.min(60, Math.max(...offenders.map((x) => oneLine(x.name).length)));
  process.stderr.write(`quantlens: ${offenders.length} of ${items.length} ${what} below ${threshold} dB:\n`);
  for (const x of offenders) {
    const why = x.error ? `failed: ${oneLine(x.error)}` : `${formatDb(x.sqnr)} dB`;
    process.stderr.write(`  ${oneLine(x.name).padEnd(width)}  ${why}\n`);
  }
  return EXIT.threshold;
}

const gateScheme = (opts) => opts.sqnrScheme ?? 'int8PerTensor';
const layerItems = (layers, scheme) =>
  layers.map((l) => ({
    name: layerLabel(l),
    sqnr: l.error ? null : l.sqnr[scheme],
    error: l.error ? `${l.error.code}: ${l.error.message}` : null,
  }));

function warnLayerErrors(layers) {
  for (const l of layers) {
    if (l.error)
      process.stderr.write(`quantlens: warning: layer ${oneLine(l.name)}: ${l.error.code}: ${oneLine(l.error.message)}\n`);
  }
}

// Weight nodes the core could not analyse: the table lists them under the layers and the
// JSON carries them; formats with no place for them (CSV, Model Explorer node data) leave
// them out, and say so on stderr, one node per line.
function noteSkipped(result, where) {
  const lines = formatSkipped(result.skipped, { suffix: ` (not in the ${where})` });
  if (lines.length) process.stderr.write(`quantlens: note: ${lines.join('\n')}\n`);
}

function warnEmptySelection(opts, n) {
  if (opts.layersRe && n === 0) process.stderr.write(`quantlens: warning: --layers ${oneLine(opts.layers)} selected no layers\n`);
}

async function runAnalyze(opts) {
  if (opts.help) {
    write(commandUsage('analyze'));
    return EXIT.ok;
  }
  checkOptions('analyze', opts);
  if (opts.positional.length !== 1) throw usageError('analyze takes exactly one MODEL.onnx', 'analyze');
  if (opts.method !== undefined && !opts.compressibility) throw usageError('--method goes with --compressibility', 'analyze');
  if (opts.compressibility && opts.format !== 'table' && opts.format !== 'json')
    throw usageError('--compressibility goes with the table or --json (the other formats have no place for it)', 'analyze');
  const p = newBar();
  const result = await analyze(opts.positional[0], {
    histogramBins: opts.bins ?? 128,
    blockSize: opts.blockSize,
    layers: opts.layersRe,
    workers: opts.workers,
    ...(opts.compressibility ? { compressibility: { method: opts.method ?? 'svd' } } : {}),
    onProgress: p.onProgress(),
  });
  p.done();
  warnLayerErrors(result.layers);
  warnEmptySelection(opts, result.layers.length);
  switch (opts.format) {
    case 'json':
      await writeJSON(result, process.stdout);
      break;
    case 'csv':
      process.stdout.write(analysisLayersCsv(result));
      noteSkipped(result, 'CSV');
      break;
    case 'csv-channels':
      process.stdout.write(analysisChannelsCsv(result));
      noteSkipped(result, 'CSV');
      break;
    case 'model-explorer': {
      const me = modelExplorerNodeData(result, { metric: opts.metric ?? 'int8PerTensor' });
      write(JSON.stringify(me.nodeData, null, 1));
      if (me.skipped.length) {
        const reasons = new Map();
        for (const s of me.skipped) {
          const r = s.reason.replace(/^in sub-graph .*/, 'in sub-graphs');
          reasons.set(r, (reasons.get(r) || 0) + 1);
        }
        process.stderr.write(
          `quantlens: note: ${me.skipped.length} layers left out of the node data (${[...reasons].map(([r, n]) => `${n} ${r}`).join(', ')})\n`,
        );
      }
      noteSkipped(result, 'node data');
      break;
    }
    default:
      write(formatTable(result, { top: opts.top ?? 20, color: process.stdout.isTTY }));
  }
  if (opts.failBelow !== undefined)
    return judge(
      layerItems(result.layers, gateScheme(opts)),
      opts.failBelow,
      `layers have an ${schemeLabel(gateScheme(opts))} SQNR`,
    );
  return EXIT.ok;
}

async function runEqualize(opts) {
  if (opts.help) {
    write(commandUsage('equalize'));
    return EXIT.ok;
  }
  checkOptions('equalize', opts);
  if (opts.positional.length !== 1) throw usageError('equalize takes exactly one MODEL.onnx', 'equalize');
  if (opts.iterations !== undefined && !(Number.isInteger(opts.iterations) && opts.iterations >= 0))
    throw usageError('--iterations takes a non-negative integer', 'equalize');
  const p = newBar();
  // The equalized model is never held whole: with -o it is written to the file piece by
  // piece; without -o, --fail-below-sqnr has it written to a temporary folder (removed
  // after) to analyse it, and otherwise no file is made (the report alone).
  const judged = opts.failBelow !== undefined;
  const tmp = !opts.output && judged ? fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-')) : null;
  const output = opts.output ?? (tmp ? path.join(tmp, 'equalized.onnx') : undefined);
  let full;
  let after = null;
  try {
    full = await equalize(opts.positional[0], {
      keepRelu6: !!opts.keepRelu6,
      biasAbsorption: !opts.noBiasAbsorption,
      maxIterations: opts.iterations,
      ...(output ? { output } : { write: false }),
      // in the temporary folder, the data file under the name it has without -o
      ...(tmp ? { dataName: `${path.basename(opts.positional[0]).replace(/\.onnx$/i, '')}.equalized.onnx.data` } : {}),
      onProgress: p.onProgress(),
    });
    // The equalized model, analysed from the written file (its data file beside it), for the threshold.
    if (judged)
      after = await analyze(output, {
        blockSize: opts.blockSize,
        layers: opts.layersRe,
        onProgress: p.onProgress('equalized model'),
      });
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (tmp) full = { ...full, output: null, dataOutput: null }; // removed: nothing was written
  p.done();
  const result = opts.layersRe ? selectEqualization(full, opts.layersRe) : full;
  let wrote = '';
  if (opts.output) {
    wrote = full.summary.changed ? `Wrote ${opts.output} (${full.size} bytes).` : `Wrote an unchanged copy to ${opts.output}.`;
    if (full.dataOutput) wrote += ` Its external data: ${full.dataOutput} (${full.dataSize} bytes).`;
  }
  if (opts.format === 'json') {
    const { bytes, blob, dataBytes, dataBlob, ...report } = result;
    write(JSON.stringify(toJSON({ ...report, output: opts.output ?? null })));
  } else if (opts.format === 'csv') {
    process.stdout.write(equalizationCsv(result));
  } else {
    write(formatEqualization(result, { top: opts.top ?? 40, color: process.stdout.isTTY }));
    if (opts.layersRe)
      write(
        `--layers ${oneLine(opts.layers)}: ${result.layers.length} of ${full.layers.length} changed layers shown; the SQNR means above are over those.`,
      );
    write(wrote || 'No -o given: nothing written.');
  }
  if (after) {
    warnLayerErrors(after.layers);
    warnEmptySelection(opts, after.layers.length);
    return judge(
      layerItems(after.layers, gateScheme(opts)),
      opts.failBelow,
      `layers of the equalized model have an ${schemeLabel(gateScheme(opts))} SQNR`,
    );
  }
  return EXIT.ok;
}

// The plan as a table: the target, what it reaches, each layer's choice (most compressed first).
function formatCompression(r, { top = 40 } = {}) {
  const a = r.achieved;
  const pct = (x) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
  const lines = [
    `${r.model.name}: target ${r.target.ratio} of the ${r.target.by === 'macs' ? 'MACs' : 'parameters'} (${r.target.method}); ` +
      `kept ${pct(a.params)} of ${a.paramsBefore} weight parameters, ${pct(a.macs)} of the MACs` +
      (r.thresholdDb === null ? '' : `; lowest weight SQNR ${r.thresholdDb.toFixed(1)} dB`),
    '',
  ];
  const done = r.layers.filter((l) => l.method);
  done.sort((x, y) => x.paramFraction - y.paramFraction);
  const rows = done
    .slice(0, top)
    .map((l, i) => [
      String(i + 1),
      oneLine(l.name),
      l.method,
      String(l.rank ?? l.keptChannels),
      `${l.paramsBefore} -> ${l.params}`,
      pct(l.paramFraction),
      formatDb(l.sqnrDb),
    ]);
  const head = ['#', 'layer', 'method', 'keep', 'params', 'kept', 'SQNR dB'];
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((row) => row[k].length)));
  const line = (cells) => cells.map((c, k) => (k === 1 || k === 2 ? c.padEnd(w[k]) : c.padStart(w[k]))).join('  ');
  lines.push(line(head), ...rows.map(line));
  if (done.length > top) lines.push(`... ${done.length - top} more compressed layers (--top)`);
  const alone = r.layers.filter((l) => !l.method);
  const reasons = new Map();
  for (const l of alone) reasons.set(l.leftAlone, (reasons.get(l.leftAlone) ?? 0) + 1);
  lines.push('', `${done.length} layers compressed, ${alone.length} left as they are:`);
  for (const [why, n] of [...reasons].sort((x, y) => y[1] - x[1])) lines.push(`  ${n} x ${oneLine(why)}`);
  return lines.join('\n');
}

// What the plan does to quantization risk, as lines: high-risk layers in the whole model per
// scheme, then the compressed layers whose INT8 per-channel SQNR changes most.
function formatCompressionRisk(risk, { top = 40 } = {}) {
  const shown = ['int8PerTensor', 'int8PerChannel', 'int4PerChannel'].filter((s) => risk.schemes.includes(s));
  const lines = ['', 'Quantization risk after compression (the compressed model analysed):'];
  for (const s of shown)
    lines.push(`  ${schemeLabel(s)}: ${risk.highRisk[s].before} -> ${risk.highRisk[s].after} layers at high risk`);
  const key = 'int8PerChannel';
  const delta = (l) =>
    l.before && l.before.sqnr[key] !== null && l.after.sqnr[key] !== null ? l.after.sqnr[key] - l.before.sqnr[key] : null;
  const rows = risk.layers
    .filter((l) => delta(l) !== null)
    .sort((a, b) => Math.abs(delta(b)) - Math.abs(delta(a)))
    .slice(0, top)
    .map((l) => [
      oneLine(l.name),
      `${l.method} ${l.rank ?? l.keptChannels}`,
      ...shown.map((s) => `${formatDb(l.before.sqnr[s])} -> ${formatDb(l.after.sqnr[s])}`),
      `${l.before.outliers} -> ${l.after.outliers}`,
    ]);
  const head = ['layer', 'compressed by', ...shown.map((s) => `${schemeLabel(s)} dB`), 'outliers'];
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((row) => row[k].length)));
  const line = (cells) => `  ${cells.map((c, k) => (k < 2 ? c.padEnd(w[k]) : c.padStart(w[k]))).join('  ')}`;
  lines.push('', line(head), ...rows.map(line));
  const missing = risk.layers.filter((l) => l.missing.length);
  if (missing.length)
    lines.push(`  ${missing.length} compressed layers not found in the compressed model's analysis (unnamed nodes)`);
  return lines.join('\n');
}

async function runCompress(opts) {
  if (opts.help) {
    write(commandUsage('compress'));
    return EXIT.ok;
  }
  checkOptions('compress', opts);
  if (opts.positional.length !== 1) throw usageError('compress takes exactly one MODEL.onnx', 'compress');
  if (opts.ratio === undefined) throw usageError('compress needs --ratio R, the fraction to keep', 'compress');
  const p = newBar();
  const r = await compress(opts.positional[0], {
    ratio: opts.ratio,
    by: opts.by ?? 'params',
    method: opts.method ?? 'svd',
    ...(opts.output ? { output: opts.output } : { blob: false }),
    onProgress: p.onProgress(),
  });
  p.done();
  const { bytes, blob, ...report } = r;
  let risk = null;
  if (opts.risk) {
    const q = newBar();
    const before = await analyze(opts.positional[0], { onProgress: q.onProgress() });
    const after = await analyze(opts.output ? opts.output : bytes, { onProgress: q.onProgress() });
    q.done();
    risk = compressionRisk(before, after, r);
  }
  if (opts.format === 'json') {
    write(JSON.stringify(toJSON({ ...report, output: opts.output ?? null, ...(risk ? { risk } : {}) })));
  } else {
    write(formatCompression(report, { top: opts.top ?? 40 }));
    if (risk) write(formatCompressionRisk(risk, { top: opts.top ?? 40 }));
    write(opts.output ? `Wrote ${opts.output} (${r.size} bytes).` : 'No -o given: nothing written.');
  }
  return EXIT.ok;
}

async function runCompare(opts) {
  if (opts.help) {
    write(commandUsage('compare'));
    return EXIT.ok;
  }
  checkOptions('compare', opts);
  if (opts.positional.length !== 2) throw usageError('compare takes two models, A.onnx and B.onnx', 'compare');
  const p = newBar();
  const full = await compare(opts.positional[0], opts.positional[1], { workers: opts.workers, onProgress: p.onProgress() });
  p.done();
  const cmp = opts.layersRe ? selectComparison(full, opts.layersRe) : full;
  warnEmptySelection(opts, cmp.pairs.length + cmp.unmatched.a.length + cmp.unmatched.b.length);
  switch (opts.format) {
    case 'json':
      await writeJSON(cmp, process.stdout);
      break;
    case 'csv':
      process.stdout.write(comparisonPairsCsv(cmp));
      break;
    case 'csv-channels':
      process.stdout.write(comparisonChannelsCsv(cmp));
      break;
    default:
      write(formatComparison(cmp, { top: opts.top ?? 40, color: process.stdout.isTTY }));
  }
  if (opts.failBelow !== undefined) {
    const items = cmp.pairs.map((q) => ({
      name: q.a.name === q.b.name ? q.a.name : `${q.a.name} / ${q.b.name}`,
      sqnr: q.comparable ? q.tensor.sqnr : null,
      error: q.comparable ? null : `not comparable: ${q.reason}`,
    }));
    return judge(items, opts.failBelow, 'pairs have an SQNR (B against A)');
  }
  return EXIT.ok;
}

async function runReport(opts) {
  if (opts.help) {
    write(commandUsage('report'));
    return EXIT.ok;
  }
  checkOptions('report', opts);
  if (opts.positional.length !== 1) throw usageError('report takes exactly one MODEL.onnx', 'report');
  if (!opts.output) throw usageError('report needs -o REPORT.html', 'report');
  if (opts.method !== undefined && !opts.compressibility) throw usageError('--method goes with --compressibility', 'report');
  const model = opts.positional[0];
  const p = newBar();
  const layers = opts.layersRe;
  const analysis = await analyze(model, {
    histogramBins: opts.bins ?? 128,
    blockSize: opts.blockSize,
    layers,
    workers: opts.workers,
    onProgress: p.onProgress('model'),
  });
  let equalization = opts.equalize
    ? await equalize(model, {
        keepRelu6: !!opts.keepRelu6,
        biasAbsorption: !opts.noBiasAbsorption,
        write: false, // the report shows what CLE changes; the equalized file is not made
        onProgress: p.onProgress('equalize'),
      })
    : null;
  if (equalization && layers) equalization = selectEqualization(equalization, layers);
  let comparison = null;
  let analysisB = null;
  if (opts.compare) {
    analysisB = await analyze(opts.compare, {
      histogramBins: opts.bins ?? 128,
      blockSize: opts.blockSize,
      layers,
      workers: opts.workers,
      onProgress: p.onProgress('model B'),
    });
    comparison = await compare(model, opts.compare, { workers: opts.workers, onProgress: p.onProgress('compare') });
    if (layers) comparison = selectComparison(comparison, layers);
  }
  // The Compression tab's data, as the app computes it (the whole model, whatever --layers).
  const compression = opts.compressibility
    ? await compressibility(model, {
        method: opts.method ?? 'svd',
        ratio: 0.5,
        ratios: PLAN_RATIOS,
        full: true,
        workers: opts.workers,
        onProgress: p.onProgress('compressibility'),
      })
    : null;
  p.done();
  warnEmptySelection(opts, analysis.layers.length);
  // Written a piece at a time (about 1 MB of text each): the report of an LLM is hundreds of
  // MB, which as one string (and its encoding) would not stay in bounded memory.
  const pieces = await saveReportPieces({ analysis, equalization, comparison, analysisB, compression });
  let written = 0;
  let fd = null;
  try {
    fd = fs.openSync(opts.output, 'w');
    for (const piece of pieces) {
      const bytes = Buffer.from(piece, 'utf8');
      for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at);
      written += bytes.length;
    }
  } catch (e) {
    throw new QuantLensError('IO_ERROR', `cannot write ${opts.output}: ${e.message}`, { cause: e });
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  const parts = ['model', 'layer', equalization && 'equalization', comparison && 'compare'].filter(Boolean);
  write(`Wrote ${opts.output} (${(written / 1e6).toFixed(2)} MB; views: ${parts.join(', ')}).`);
  return EXIT.ok;
}

// A closed pipe (quantlens ... | head) ends output quietly.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const RUN = { analyze: runAnalyze, equalize: runEqualize, compare: runCompare, compress: runCompress, report: runReport };

async function main(argv) {
  const [cmd, ...args] = argv;
  if (!cmd) throw usageError('no command given', 'main');
  if (cmd === '-h' || cmd === '--help') {
    write(MAIN_USAGE);
    return EXIT.ok;
  }
  if (cmd === 'help') {
    const topic = argv[1];
    if (argv.length > 2) throw usageError('help takes at most one command', 'main');
    if (topic === undefined || topic === 'help' || topic === '-h' || topic === '--help') {
      write(MAIN_USAGE);
      return EXIT.ok;
    }
    if (!RUN[topic]) throw usageError(`unknown command '${topic}'`, 'main');
    write(commandUsage(topic));
    return EXIT.ok;
  }
  if (!RUN[cmd]) throw usageError(`unknown command '${cmd}'`, 'main');
  return RUN[cmd](parseCommandLine(cmd, args));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (bar) bar.done();
    if (e instanceof QuantLensError) {
      const [first, ...more] = e.message.split('\n');
      process.stderr.write(`quantlens: ${e.code === 'USAGE' ? '' : `${e.code}: `}${oneLine(first)}\n`);
      if (e.code === 'USAGE') process.stderr.write(`${more.join('\n')}\n`);
      process.exitCode = BAD_INPUT.has(e.code) ? EXIT.badInput : EXIT.internal;
    } else {
      process.stderr.write(`quantlens: internal error: ${oneLine(e && e.stack ? e.stack : e)}\n`);
      process.exitCode = EXIT.internal;
    }
  },
);

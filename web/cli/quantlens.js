#!/usr/bin/env node
// quantlens: command-line front end over the WASM core (Node 20+).
import fs from 'node:fs';
import { analyze, compare, equalize, formatEqualization, formatTable, toJSON, QuantLensError } from '../src/index.js';
import { saveReport } from '../src/save-report.js';

const USAGE = {
  main: `Usage: quantlens <command> [options]

Commands:
  analyze MODEL.onnx    per-channel weight ranges, outlier channels and INT8/INT4 SQNR
  equalize MODEL.onnx   Cross Layer Equalization: writes the equalized model, reports what changed
  report MODEL.onnx     one self-contained HTML file with the app's interactive views, for offline reading

Run 'quantlens <command> --help' for the options of a command.`,
  analyze: `Usage: quantlens analyze MODEL.onnx [options]

Prints the riskiest weight layers of an ONNX model for INT8/INT4 quantization.

Options:
  --json            print the whole analysis as JSON (schema quantlens.analysis/1)
  --top N           rows in the table (default 20)
  --bins N          histogram bins per layer (default 128)
  --layers REGEX    analyse only layers whose name matches
  -h, --help        this text

Exit status: 0 done, 2 bad input (unreadable or malformed model, missing external data), 1 other failure.`,
  equalize: `Usage: quantlens equalize MODEL.onnx -o OUT.onnx [options]

Folds BatchNorm, equalizes the weight ranges of consecutive layers (Cross Layer
Equalization, Nagel et al. 2019) and writes a model that computes the same function.
Without -o, reports what would change and writes nothing.

Options:
  -o, --output FILE       where to write the equalized model
  --keep-relu6            keep ReLU6 (Clip 0..6): sequences stop there instead of replacing it by Relu
  --no-bias-absorption    do not absorb high biases into the next layer
  --iterations N          most sweeps over each sequence (default 50; 0 folds BatchNorm and replaces ReLU6 only)
  --json                  print the report as JSON (schema quantlens.equalization/1)
  --top N                 layers in the table (default 40)
  -h, --help              this text

Exit status: 0 done (also when there is nothing to equalize), 2 bad input, 1 other failure.`,
  report: `Usage: quantlens report MODEL.onnx -o REPORT.html [options]

Writes one self-contained HTML file (code, styles and data inline; it makes no network
request) with the interactive views of the app: model, layer, and where asked,
equalization and comparison. The same file as the app's "Save report".

Options:
  -o, --output FILE       where to write the report (required)
  --equalize              run Cross Layer Equalization and include what it changes
  --keep-relu6            with --equalize: keep ReLU6, ending sequences there
  --no-bias-absorption    with --equalize: no high-bias absorption
  --compare OTHER.onnx    compare the weights with a second model (e.g. its QDQ or QLinearConv quantized copy)
  --bins N                histogram bins per layer (default 128)
  -h, --help              this text

Exit status: 0 done, 2 bad input, 1 other failure.`,
};

// Exit status 2: the input is at fault.
const BAD_INPUT = new Set(['INVALID_MODEL', 'UNSUPPORTED_DTYPE', 'MISSING_EXTERNAL_DATA', 'IO_ERROR', 'INVALID_ARGUMENT', 'UNSUPPORTED', 'USAGE']);

const oneLine = (s) => String(s).replace(/[\u0000-\u001f\u007f]+/g, ' ');

function usageError(msg, cmd) {
  return new QuantLensError('USAGE', `${msg}\n${USAGE[cmd] || USAGE.main}`);
}

function parseArgs(argv) {
  const [cmd, ...rest] = argv;
  const opts = { positional: [] };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const value = () => {
      if (i + 1 >= rest.length) throw usageError(`${a} needs a value`, cmd);
      return rest[++i];
    };
    if (a === '-h' || a === '--help') opts.help = true;
    else if (a === '--json') opts.json = true;
    else if (a === '--top') {
      opts.top = Number(value());
      if (!(Number.isInteger(opts.top) && opts.top > 0)) throw usageError('--top takes a positive integer', cmd);
    }
    else if (a === '--bins') opts.bins = Number(value());
    else if (a === '--layers') opts.layers = value();
    else if (a === '-o' || a === '--output') opts.output = value();
    else if (a === '--keep-relu6') opts.keepRelu6 = true;
    else if (a === '--no-bias-absorption') opts.noBiasAbsorption = true;
    else if (a === '--iterations') opts.iterations = Number(value());
    else if (a === '--equalize') opts.equalize = true;
    else if (a === '--compare') opts.compare = value();
    else if (a.startsWith('-') && a !== '-') throw usageError(`unknown option ${a}`, cmd);
    else opts.positional.push(a);
  }
  return { cmd, opts };
}

async function runAnalyze(opts) {
  if (opts.help) { process.stdout.write(`${USAGE.analyze}\n`); return 0; }
  if (opts.positional.length !== 1) throw usageError('analyze takes exactly one MODEL.onnx', 'analyze');
  let layers;
  if (opts.layers !== undefined) {
    try { layers = new RegExp(opts.layers); } catch (e) { throw usageError(`--layers: ${e.message}`, 'analyze'); }
  }
  const result = await analyze(opts.positional[0], { histogramBins: opts.bins ?? 128, layers });
  for (const l of result.layers) {
    if (l.error) process.stderr.write(`quantlens: warning: layer ${oneLine(l.name)}: ${l.error.code}: ${oneLine(l.error.message)}\n`);
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(toJSON(result))}\n`);
  else process.stdout.write(`${formatTable(result, { top: opts.top ?? 20, color: process.stdout.isTTY })}\n`);
  return 0;
}

async function runEqualize(opts) {
  if (opts.help) { process.stdout.write(`${USAGE.equalize}\n`); return 0; }
  if (opts.positional.length !== 1) throw usageError('equalize takes exactly one MODEL.onnx', 'equalize');
  if (opts.iterations !== undefined && !(Number.isInteger(opts.iterations) && opts.iterations >= 0)) throw usageError('--iterations takes a non-negative integer', 'equalize');
  const result = await equalize(opts.positional[0], {
    keepRelu6: !!opts.keepRelu6, biasAbsorption: !opts.noBiasAbsorption, maxIterations: opts.iterations,
  });
  let wrote = '';
  if (opts.output) {
    try {
      fs.writeFileSync(opts.output, result.bytes);
    } catch (e) {
      throw new QuantLensError('IO_ERROR', `cannot write ${opts.output}: ${e.message}`, { cause: e });
    }
    wrote = result.summary.changed ? `Wrote ${opts.output} (${result.bytes.length} bytes).` : `Wrote an unchanged copy to ${opts.output}.`;
  }
  if (opts.json) {
    const { bytes, ...report } = result;
    process.stdout.write(`${JSON.stringify(toJSON({ ...report, output: opts.output ?? null }))}\n`);
  } else {
    process.stdout.write(`${formatEqualization(result, { top: opts.top ?? 40, color: process.stdout.isTTY })}\n`);
    process.stdout.write(`${wrote || 'No -o given: nothing written.'}\n`);
  }
  return 0;
}

async function runReport(opts) {
  if (opts.help) { process.stdout.write(`${USAGE.report}\n`); return 0; }
  if (opts.positional.length !== 1) throw usageError('report takes exactly one MODEL.onnx', 'report');
  if (!opts.output) throw usageError('report needs -o REPORT.html', 'report');
  const model = opts.positional[0];
  const analysis = await analyze(model, { histogramBins: opts.bins ?? 128 });
  const equalization = opts.equalize
    ? await equalize(model, { keepRelu6: !!opts.keepRelu6, biasAbsorption: !opts.noBiasAbsorption })
    : null;
  let comparison = null;
  let analysisB = null;
  if (opts.compare) {
    analysisB = await analyze(opts.compare, { histogramBins: opts.bins ?? 128 });
    comparison = await compare(model, opts.compare);
  }
  const html = await saveReport({ analysis, equalization, comparison, analysisB });
  try {
    fs.writeFileSync(opts.output, html);
  } catch (e) {
    throw new QuantLensError('IO_ERROR', `cannot write ${opts.output}: ${e.message}`, { cause: e });
  }
  const parts = ['model', 'layer', equalization && 'equalization', comparison && 'compare'].filter(Boolean);
  process.stdout.write(`Wrote ${opts.output} (${(html.length / 1e6).toFixed(2)} MB; views: ${parts.join(', ')}).\n`);
  return 0;
}

// A closed pipe (quantlens ... | head) ends output quietly.
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw e; });

async function main(argv) {
  const { cmd, opts } = parseArgs(argv);
  if (!cmd) throw usageError('no command given', 'main');
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(`${USAGE.main}\n`);
    return 0;
  }
  if (cmd === 'analyze') return runAnalyze(opts);
  if (cmd === 'equalize') return runEqualize(opts);
  if (cmd === 'report') return runReport(opts);
  throw usageError(`unknown command '${cmd}'`, 'main');
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    if (e instanceof QuantLensError) {
      const [first, ...more] = e.message.split('\n');
      process.stderr.write(`quantlens: ${e.code === 'USAGE' ? '' : `${e.code}: `}${oneLine(first)}\n`);
      if (e.code === 'USAGE') process.stderr.write(`${more.join('\n')}\n`);
      process.exitCode = BAD_INPUT.has(e.code) ? 2 : 1;
    } else {
      process.stderr.write(`quantlens: internal error: ${oneLine(e && e.stack ? e.stack : e)}\n`);
      process.exitCode = 1;
    }
  },
);

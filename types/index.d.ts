// TypeScript declarations for 'quantlens' (and 'quantlens/inline', the same API with the
// .wasm carried inside). The shapes are those of web/src/analyze.js, equalize.js and
// compare.js and of the README's document sections; tests/js/package.test.mjs checks that
// every runtime export is declared here and compiles a consumer against these files.

// ------------------------------------------------------------------ sources and errors

/** A model: a path (Node only), its bytes, or a Blob/File (browsers, workers, Node 20). */
export type ModelSource = string | Uint8Array | ArrayBuffer | Blob;

/** The external data of a model: bytes or Blobs by location, or a reader (of the bytes, or of a Blob holding just them, read where it is needed). */
export type ExternalData =
  | Record<string, Uint8Array | ArrayBuffer | Blob>
  | ((
      location: string,
      offset: number,
      length: number,
    ) => Promise<Uint8Array | ArrayBuffer | Blob | null> | Uint8Array | ArrayBuffer | Blob | null);

export type ErrorCode =
  | 'INVALID_MODEL'
  /** A graph the ONNX spec forbids: a name assigned twice, an input nothing defines, a cycle. */
  | 'INVALID_GRAPH'
  | 'UNSUPPORTED_DTYPE'
  | 'MISSING_EXTERNAL_DATA'
  /** An external data location outside the model's folder (absolute, '..', drive letter, NUL, or a symbolic link out). Nothing is read. */
  | 'UNSAFE_EXTERNAL_DATA'
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED'
  | 'IO_ERROR'
  | 'OUT_OF_MEMORY'
  | 'ABORTED'
  /** A worker that stopped unexpectedly (createWorkerClient). */
  | 'INTERNAL';

export class QuantLensError extends Error {
  constructor(code: ErrorCode | string, message: string, options?: { offset?: number; cause?: unknown });
  readonly name: 'QuantLensError';
  /** One of ErrorCode. */
  code: ErrorCode | string;
  /** The byte in the file where the problem is, or -1. */
  offset: number;
}

/** Progress of a long call: bytes for phases 'read' and 'write' (equalize's output), layers (or pairs) otherwise. */
export interface Progress {
  phase: 'read' | 'analyze' | 'equalize' | 'write' | 'compare' | 'curves' | (string & {});
  done: number;
  total: number;
  /** The layer just analysed or compared. */
  layer?: string;
  /** compare(): which model is being read. */
  side?: 'a' | 'b';
  /** analyze(), compare() and the compression curves in a pool of workers: how many. */
  workers?: number;
  /** analyze() in a pool: `layer` is computed in this many parts, one per worker. */
  parts?: number;
  /** analyze(): bytes of the chosen layers' weights read so far (during a layer too), of bytesTotal. */
  bytes?: number;
  bytesTotal?: number;
  /** analyze(): `layer` is being read (it is layer done + 1 of total), not finished. */
  reading?: boolean;
}

/** What onLayer is told with each layer finished. */
export interface LayerArrival {
  model: ModelInfo;
  schemes: string[];
  skipped: string[];
  /** How many layers the result will hold. */
  layers: number;
  /** This layer's place in the result's `layers`. */
  position: number;
}

export interface CallOptions {
  onProgress?: (progress: Progress) => void;
  /** Cancels between slices and layers: the call rejects with QuantLensError code ABORTED. */
  signal?: AbortSignal;
}

// ------------------------------------------------------------------ analyze()

/** The schemes always measured: per tensor, per output channel, and INT4 per block of 32 or 128
 * weights along the reduction axis of an output channel. */
export type Scheme = 'int8PerTensor' | 'int8PerChannel' | 'int4PerTensor' | 'int4PerChannel' | 'int4Block32' | 'int4Block128';
/** A block-wise INT4 scheme, int4Block<N> (the blockSize option adds one). */
export type BlockScheme = `int4Block${number}`;
export declare const SCHEMES: readonly Scheme[];
export declare const SCHEMA: 'quantlens.analysis/1';

/** SQNR in dB per scheme; Infinity when nothing is lost (null after toJSON). With the
 * blockSize option, also its int4Block<N>. */
export type SqnrByScheme<T = number> = Record<Scheme, T> & Partial<Record<BlockScheme, T>>;

export interface AnalyzeOptions extends CallOptions {
  /** Bins of each layer's weight histogram (1 to 1048576; 128). */
  histogramBins?: number;
  /** One more INT4 block size to measure, as scheme int4Block<N> (a whole number from 1 to
   * 1048576; blocks of 32 and 128 are always measured). */
  blockSize?: number;
  externalData?: ExternalData;
  /** Which layers to analyse: a RegExp on the layer name or a predicate. */
  layers?: RegExp | ((layer: LayerInfo) => boolean);
  /** Threads analysing layers in parallel (1 to 64; 1: the calling thread alone; the calling
   * thread is one of them where it has the model open: a path in Node, bytes). Default: one
   * per core, at most 8, when the selected weights come to 64 MB or more. Same result whatever. */
  workers?: number;
  /** Each layer as it is finished (in layer order in one thread, as they finish in a pool), the
   * same object the result's `layers` will hold. */
  onLayer?: (layer: Layer, info: LayerArrival) => void;
  /** Each layer's compressibility curves too (compressibility()'s, at CURVE_FRACTIONS): true is
   * { method: 'svd' }. Off by default: it factors every layer of the model, far slower than the
   * analysis. Progress 'read' then 'curves' after the analysis; signal cancels it. */
  compressibility?: boolean | { method?: 'svd' | 'prune' | 'auto' };
}

/** A layer's entry of compressibility() without its name and op (analyze()'s compressibility option). */
export interface LayerCompressibility {
  params: number;
  macs: number | null;
  curves: CompressionCurve[];
}

export interface ModelInfo {
  name: string;
  producer: string;
  producerVersion: string;
  irVersion: number;
  domain: string;
  opsets: { domain: string; version: number }[];
  /** Size of the file. */
  bytes: number;
  graph: string;
  metadata: { key: string; value: string }[];
  nodes: number;
}

export interface Follower {
  /** 'none', 'multiple', 'batchnorm', 'relu', 'relu6', 'clip', 'prelu', 'leakyrelu', 'silu', 'other'. */
  kind: string;
  op: string | null;
  node: string | null;
  /** Clip bounds, when the follower is a Clip/ReLU6. */
  min: number | null;
  max: number | null;
}

/** A weight stored quantized (QDQ per-tensor, per-axis or per-block, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, MatMulNBits, GatherBlockQuantized). */
export interface QuantInfo {
  via: string;
  /** The stored type ('int8', 'int4', 'uint4', 'float8e4m3fn', ...); 'uint4' or 'uint8' codes for MatMulNBits. */
  dtype: string;
  /** The stored weight's axis of per-axis or per-block (DequantizeLinear) parameters; null: per-tensor, and for MatMulNBits. */
  axis: number | null;
  /**
   * MatMulNBits: one per block, block b of output channel n at n * ceil(K / blockSize) + b.
   * Blocked DequantizeLinear: the scale tensor in stored order (the weight's shape with
   * shape[axis] = ceil(shape[axis] / blockSize)).
   */
  scale: Float64Array;
  /** MatMulNBits: one per block, or [2^(bits-1)] when the file has no zero points. Blocked DequantizeLinear: like scale, or [0]. */
  zeroPoint: Float64Array;
  /** Present for block-wise weights (MatMulNBits, DequantizeLinear with block_size, GatherBlockQuantized) only. */
  granularity?: 'per-block';
  /** Bits of the stored codes (4 or 8; 8 for float8). */
  bits?: number;
  /** Weights per block: along K (MatMulNBits), along `axis` (DequantizeLinear). */
  blockSize?: number;
  /** Every zero point is the codes' centre: 2^(bits-1) for unsigned codes, 0 for signed and float8 ones. */
  symmetric?: boolean;
  /** ConvInteger / MatMulInteger (ONNX Runtime's dynamic quantization): the Mul after the op that applies the traced weight scale. */
  scaleVia?: string;
  /** Why the weight could not be fully dequantized (e.g. 'weight scale not found (codes shown in integer units): ...'): the values are then integer codes. */
  note?: string;
}

/** What a weight stored as codes of 8 bits or fewer (int8, uint8, int4, uint4, float8) says about the quantization already done (docs/computations.md, "Stored quantization"). */
export interface StoredFacts {
  bits: number;
  signed: boolean;
  /** float8: codes are values on the type's grid of distinct finite values; codeMin, codeMax, typeMin, typeMax and lowEnd are values. */
  float: boolean;
  typeMin: number;
  typeMax: number;
  /** The low end counted as saturation: typeMin, or typeMin + 1 for a signed integer symmetric scheme. */
  lowEnd: number;
  granularity: 'per-tensor' | 'per-channel' | 'per-axis' | 'per-block';
  /** Every zero point 0 (signed) or 2^(bits-1) (unsigned). */
  symmetric: boolean;
  elements: number;
  /** Median over channels of log2(distinct codes used). */
  effectiveBits: number;
  /** Median over channels of log2(highest code - lowest code + 1) (float8: of the number of grid values from the lowest to the highest). */
  spanBits: number;
  lowestSpanBits: number;
  /** Codes at lowEnd or typeMax, over all codes. */
  saturatedFraction: number;
  /** Channels with more than max(2, 1% of their codes) at the ends. */
  saturatedChannels: number;
  zeroPointsOutsideUsed: number;
  zeroPointsOutsideType: number;
  /** Per output channel. */
  channels: { levels: Float64Array; codeMin: Float64Array; codeMax: Float64Array; atLow: Float64Array; atHigh: Float64Array };
}

/** What analyze() knows of a layer before reading its weight (the `layers` predicate's argument). */
export interface LayerInfo {
  /** Position among the model's weight layers. */
  index: number;
  name: string;
  /** The enclosing sub-graph, such as 'Loop_3/body'; '' for the main graph. */
  path: string;
  op: string;
  /** The weight tensor's name as stored in the file. */
  weight: string;
  /** The stored tensor's shape. */
  shape: number[];
  dtype: string;
  channelAxis: number;
  channels: number;
  groups: number;
  depthwise: boolean;
  bias: string | null;
  /** Ops the weight passes through on its way to the layer (Transpose, DequantizeLinear, ...). */
  via: string[];
  follower: Follower;
  /** What follows a BatchNorm follower. */
  activation: Follower | null;
  /** LSTM, GRU and RNN only: which of the node's two layers this is, and how its channels read. */
  recurrent?: Recurrent;
}

/**
 * A recurrent node (LSTM, GRU, RNN) is two layers, named `<node>/W` (input weights W
 * [directions, gates*hiddenSize, input_size]) and `<node>/R` (recurrent weights R
 * [directions, gates*hiddenSize, hiddenSize]). Output channel
 * `d * gates.length * hiddenSize + g * hiddenSize + u` is unit u of gate `gates[g]` in
 * direction d (recurrentChannel() in presentation.js says so in words). `bias` names the
 * node's B [directions, 2*gates*hiddenSize], of which this layer's part starts at
 * `biasOffset` in each direction's row.
 */
export interface Recurrent {
  /** The node's name (the layer's name without '/W' or '/R'). */
  node: string;
  part: 'W' | 'R';
  direction: 'forward' | 'reverse' | 'bidirectional';
  directions: 1 | 2;
  /** The gates in the order the ONNX specification stacks them: LSTM i o f c, GRU z r h, RNN i. */
  gates: string[];
  hiddenSize: number;
  biasOffset: number;
  /** LSTM's peephole weights P (not analysed), when the node has them. */
  peepholes: string | null;
}

export interface ChannelStats {
  count: number;
  min: Float32Array;
  max: Float32Array;
  mean: Float64Array;
  std: Float64Array;
  absMax: Float32Array;
  range: Float32Array;
  relativeRange: Float64Array;
  sqnr: SqnrByScheme<Float32Array>;
}

export interface TensorStats {
  min: number;
  max: number;
  mean: number;
  std: number;
  absMax: number;
}

/** The statistics of one weight (also equalize()'s `before` and `after`). */
export interface WeightStats {
  channels: ChannelStats;
  tensor: TensorStats;
  histogram: { min: number; max: number; counts: Uint32Array };
  /** Channels flagged by AIMET's rule (relative range above Q3 + 1.5 IQR). */
  outlierChannels: Uint32Array;
  outlierThreshold: number;
  quartiles: [number, number];
  sqnr: SqnrByScheme;
}

/**
 * Per input channel of the layer's input (docs/computations.md): absMax of every weight
 * that multiplies it, and the channels AIMET's rule flags on absMax relative to the
 * smallest non-zero one. A grouped Conv's input channel G * perGroup + j is stored index j
 * of the I/g axis in group G's filters.
 */
export interface InputChannelStats {
  /** Input channels: groups * perGroup. */
  count: number;
  /** The input-channel axis of the stored tensor (`shape`). */
  axis: number;
  /** Conv groups (1 for every other op). */
  groups: number;
  /** The size of the stored input axis (I/g for a grouped Conv). */
  perGroup: number;
  absMax: Float32Array;
  /** absMax / the smallest non-zero absMax (all 0 when every absMax is 0). */
  relativeAbsMax: Float64Array;
  /** Input channels with relativeAbsMax above `threshold` = Q3 + 1.5 (Q3 - Q1). */
  outliers: Uint32Array;
  threshold: number;
  quartiles: [number, number];
}

/** A layer with its statistics (`channels` now holds the per-channel arrays; its count is channels.count). */
export interface AnalyzedLayer extends Omit<LayerInfo, 'channels'>, WeightStats {
  /** How the weight is stored quantized, or null for a float weight. */
  quant: QuantInfo | null;
  inputChannels: InputChannelStats;
  /** For weights stored as int8 / uint8 / 4-bit codes: what the codes say; null otherwise. */
  stored: StoredFacts | null;
  error?: undefined;
  /** With the compressibility option only: the layer's curves, or null (see Analysis.compressibilityError). */
  compressibility?: LayerCompressibility | null;
}

/** A layer that could not be analysed (NaN weights, an unsupported dtype, ...): no statistics. */
export interface FailedLayer extends LayerInfo {
  error: { code: ErrorCode | string; message: string };
  compressibility?: LayerCompressibility | null;
}

/** An entry of analyze()'s `layers`; narrow with `if (layer.error)` / `if (!layer.error)`. */
export type Layer = AnalyzedLayer | FailedLayer;

export interface AnalysisSummary {
  layers: number;
  analysed: number;
  failed: number;
  parameters: number;
  layersWithOutliers: number;
  outlierChannels: number;
  /** Layers with a flagged input channel, and the flagged input channels of all layers. */
  layersWithInputOutliers: number;
  inputOutlierChannels: number;
  /** Positions in `layers`, riskiest first: by risk level (high, medium, low, failed); within a level layers stored quantized first (fewest span bits first), then float layers by INT8 per-tensor SQNR, lowest first. */
  ranking: number[];
  /** The layer of lowest INT8 per-tensor SQNR. */
  worstInt8PerTensor: { layer: string; index: number; sqnr: number } | null;
  /** Weights already stored quantized: how many, how many float, and by scheme ('int8 per-channel') and dequantizing op. */
  quantized: { layers: number; float: number; schemes: { scheme: string; via: string; layers: number }[] };
}

/** One node of the model (sub-graphs included), as the graph view draws it. */
export interface GraphNode {
  /** The node's name, or `<op>#<index in its graph>` when it has none (as a layer's `name`). */
  name: string;
  op: string;
  /** '' for the standard ONNX domain. */
  domain: string;
  /** Tensor names as written ('' for an absent optional input). */
  inputs: string[];
  outputs: string[];
  /** The enclosing sub-graph ('loop/body', 'If_3/then_branch'), as a layer's `path`; '' in the main graph. */
  path: string;
  /** Position in `nodes` of the node (If, Loop, Scan) whose attribute holds this node's sub-graph; -1 in the main graph. */
  owner: number;
}

/** Every node of the model in the order layer discovery walks them (a node, then its sub-graphs). */
export interface ModelGraph {
  nodes: GraphNode[];
  /** The main graph's inputs that are not initializers. */
  inputs: string[];
  outputs: string[];
}

/** analyze()'s result: the document quantlens.analysis/1, with typed arrays per channel. */
export interface Analysis {
  schema: 'quantlens.analysis/1';
  model: ModelInfo;
  /** compressibility: with the compressibility option only. */
  options: { histogramBins: number; blockSize: number | null; compressibility?: { method: 'svd' | 'prune' | 'auto' } };
  /** The schemes measured, in display order: SCHEMES, then int4Block<blockSize> when another. */
  schemes: (Scheme | BlockScheme)[];
  layers: Layer[];
  /** Why each weight-like node that was not analysed was skipped. */
  skipped: string[];
  /** The model's nodes and edges (by tensor name): absent in results saved before it was added. */
  graph?: ModelGraph;
  summary: AnalysisSummary;
  /** With the compressibility option only: the fractions of every layer's curve points, and the methods. */
  compressibility?: { fractions: number[]; method: 'svd' | 'prune' | 'auto' };
  /** With the compressibility option only: why no layer has curves (e.g. MISSING_EXTERNAL_DATA: weights in
   * external data files, which compressibility() does not read yet); null when they were computed. */
  compressibilityError?: { code: ErrorCode | string; message: string } | null;
}

export function analyze(source: ModelSource, options?: AnalyzeOptions): Promise<Analysis>;

// ------------------------------------------------------------------ equalize()

export declare const CLE_SCHEMA: 'quantlens.equalization/1';

export interface EqualizeOptions extends CallOptions {
  /** Keep Clip(0, 6) and end the sequence there, rather than replacing it by Relu (false). */
  keepRelu6?: boolean;
  /** High-bias absorption where a folded BatchNorm and a Relu allow it (true). */
  biasAbsorption?: boolean;
  /** Balance conv -> depthwise -> conv as a triple (true). */
  triples?: boolean;
  /** Let sequences pass through zero Pad and pooling (true). */
  throughPadPool?: boolean;
  /** Sweeps per sequence at most (an integer from 0 to 1000000; 50). */
  maxIterations?: number;
  /** Stop when every scale of a sweep is within 1 +- tolerance (a finite number >= 0; 1e-3). */
  tolerance?: number;
  /** Channels below this ratio of their layer's largest range are left out of balancing (a finite number >= 0; 1e-6). */
  deadChannelRatio?: number;
  /** Bins of the before/after histograms (an integer from 1 to 4096; 128). */
  histogramBins?: number;
  /**
   * Node only: where the equalized file goes, written piece by piece and never held whole.
   * A path is written to PATH.PID.tmp and renamed to PATH once whole (a failure or a cancel
   * leaves no file); a Writable is written to (waiting for 'drain') and not ended.
   * The result's `bytes` is then null.
   */
  output?:
    | string
    | {
        write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
        once(event: string, listener: (...args: any[]) => void): unknown;
        off(event: string, listener: (...args: any[]) => void): unknown;
      };
  /** Return the equalized file as `blob`, a Blob built from its pieces, instead of `bytes` (false). */
  blob?: boolean;
  /**
   * false: the report alone, no equalized file made (`bytes`, `blob`, `output` null); the
   * memory of a large model's `bytes` is not taken. Not with `output` or `blob` (true).
   */
  write?: boolean;
  /**
   * A model with external data: its data files, as analyze()'s externalData (Node also finds
   * them beside a model read from a path). They are read synchronously: a Blob only in a
   * worker, and a function must return the bytes, not a promise (else UNSUPPORTED).
   */
  externalData?:
    | Record<string, Uint8Array | ArrayBuffer | Blob>
    | ((location: string, offset: number, length: number) => Uint8Array);
  /**
   * A model with external data is written with one new data file that its external tensors
   * point to: its name, a plain file name (no folder), beside the written model. Default:
   * `OUT.onnx.data` for `output: 'OUT.onnx'`, else the source's name with `.equalized.onnx.data`.
   */
  dataName?: string;
}

export interface EqualizedLayer {
  name: string;
  op: string;
  weight: string;
  node: number;
  batchNormFolded: boolean;
  biasAdded: boolean;
  /** Why `before` could not be computed (it is then all zeros and left out of the summary), naming the layer; null when it was. */
  beforeError: string | null;
  /** After BatchNorm folding: the weights a quantizer would see without equalization. */
  before: WeightStats & { quant: null };
  after: WeightStats & { quant: null };
  /** Output channel c was divided by outScale[c]. */
  outScale: Float32Array;
  /** Input channel c was multiplied by inScale[c]. */
  inScale: Float32Array;
  absorbed: Float32Array | null;
}

export interface SqnrChange {
  meanBefore: number | null;
  meanAfter: number | null;
  worstBefore: number | null;
  worstAfter: number | null;
}

/** equalize()'s result: the document quantlens.equalization/1 plus the written file. */
export interface Equalization {
  schema: 'quantlens.equalization/1';
  model: { name: string; bytes: number };
  /** The options in effect, defaults included. */
  options: Required<Omit<EqualizeOptions, 'onProgress' | 'signal' | 'output' | 'blob' | 'externalData' | 'dataName'>>;
  /** The size of the equalized ONNX file in bytes. */
  size: number;
  /** The equalized ONNX file; null when it went to `output` or to `blob`. */
  bytes: Uint8Array | null;
  /** The equalized ONNX file with `blob: true`, else null. */
  blob: Blob | null;
  /** The path it was written to with `output: path`, else null. */
  output: string | null;
  /** Only for a model with external data: the name of the one new data file the written model's external tensors point to (beside the model). */
  dataName?: string;
  /** Only for a model with external data: the size of that data file in bytes. */
  dataSize?: number;
  /** Only for a model with external data: the data file, by default (null with `output` or `blob`). */
  dataBytes?: Uint8Array | null;
  /** Only for a model with external data: the data file with `blob: true`, else null. */
  dataBlob?: Blob | null;
  /** Only for a model with external data: the data file's path with `output: path` (beside it), else null. */
  dataOutput?: string | null;
  layersSeen: number;
  layers: EqualizedLayer[];
  sequences: {
    layers: string[];
    links: string[];
    triple: boolean[];
    iterations: number;
    converged: boolean;
    lastChange: number;
  }[];
  stops: { layer: string; node: string; op: string; reason: string }[];
  foldedBatchNorms: { node: string; layer: string; position: 'after' | 'before' }[];
  relu6Replaced: string[];
  relu6Kept: string[];
  deadChannels: { layer: string; channel: number; side: 'output' | 'input'; range: number }[];
  biasAbsorptions: number;
  summary: {
    changed: boolean;
    layersChanged: number;
    sequences: number;
    batchNormsFolded: number;
    relu6Replaced: number;
    deadChannels: number;
    biasAbsorptions: number;
    int8PerTensor: SqnrChange;
    int4PerTensor: SqnrChange;
    /** selectEqualization(): the layers kept. */
    layersSelected?: number;
  };
}

export function equalize(source: ModelSource, options?: EqualizeOptions): Promise<Equalization>;

// ------------------------------------------------------------------ compare()

export declare const COMPARISON_SCHEMA: 'quantlens.comparison/1';

export interface CompareOptions extends CallOptions {
  /** Each model's external data, as analyze()'s externalData (Node also finds it beside a model read from a path). A weight whose external data is missing or refused makes its pair not comparable, with the reason. */
  externalData?: { a?: ExternalData; b?: ExternalData };
}

export interface ComparedModel {
  name: string;
  bytes: number;
  producer: string;
  producerVersion: string;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  graph: string;
  nodes: number;
  /** Weight layers found. */
  layers: number;
}

export interface PairSide {
  /** Index among the model's weight layers (analyze()'s layer index). */
  position: number;
  name: string;
  path: string;
  weight: string;
  op: string;
  shape: number[];
  dtype: string;
  channelAxis: number;
  channels: number;
  quant: QuantInfo | null;
  /** LSTM, GRU and RNN only, as LayerInfo's. */
  recurrent?: Recurrent;
}

export interface Pair {
  a: PairSide;
  b: PairSide;
  matchedBy: 'weight' | 'name' | 'weight-normalized' | 'name-normalized' | 'position';
  comparable: boolean;
  /** Only when not comparable. */
  reason?: string;
  /** null when not comparable; sqnr in dB, Infinity when identical. */
  tensor: { maxAbsDiff: number; rmsDiff: number; sqnr: number } | null;
  channels: {
    count: number;
    maxAbsDiff: Float64Array;
    rmsDiff: Float64Array;
    sqnr: Float64Array;
    minA: Float32Array;
    maxA: Float32Array;
    minB: Float32Array;
    maxB: Float32Array;
  } | null;
  /**
   * B is A rescaled per channel, keeping the function (what Cross Layer Equalization and
   * BatchNorm folding do): zeros where A's are, each output channel's signs kept or flipped
   * together, the same spread of log|B/A| in every output channel. factor: B/A per output
   * channel (its sign, the channel's). null otherwise, and when not comparable.
   */
  rescale?: { factor: Float64Array } | null;
  /** selectComparison(): the pair's position among all pairs. */
  index?: number;
}

export interface ComparisonSummary {
  pairs: number;
  comparable: number;
  incomparable: number;
  unmatchedA: number;
  unmatchedB: number;
  matchedBy: { weight: number; name: number; position: number; 'weight-normalized': number; 'name-normalized': number };
  identical: number;
  /** Comparable pairs whose B is A rescaled per channel (Pair.rescale). */
  rescaled?: number;
  worst: { pair: number; name: string; sqnr: number } | null;
  maxAbsDiff: number;
}

/** compare()'s result: the document quantlens.comparison/1. */
export interface Comparison {
  schema: 'quantlens.comparison/1';
  a: { model: ComparedModel };
  b: { model: ComparedModel };
  /** In A's graph order. */
  pairs: Pair[];
  unmatched: { a: string[]; b: string[] };
  summary: ComparisonSummary;
}

export function compare(a: ModelSource, b: ModelSource, options?: CompareOptions): Promise<Comparison>;

// ------------------------------------------------------------------ presenting results

/**
 * A result as plain JSON: typed arrays become arrays, Infinity and NaN become null.
 * Typed loosely: the document has the result's shape with numbers or null in place of
 * typed arrays.
 */
// ------------------------------------------------------------------ compress() and compressibility()

export type CompressionMethod = 'weight-svd' | 'spatial-svd' | 'channel-prune';

export interface CompressOptions extends CallOptions {
  /** The fraction of all weight-layer parameters (or MACs) to keep, in (0, 1]. */
  ratio?: number;
  /** What the ratio counts ('params'). 'macs' needs every layer's spatial sizes from static input shapes. */
  by?: 'params' | 'macs';
  /** The methods the plan may use ('svd'); 'prune' and 'auto' only in builds with channel pruning. */
  method?: 'svd' | 'prune' | 'auto';
  /** Workers computing the curves (1 to 64; 1: the calling thread). Default: one per core (at most 8) for a model of 16 MB or more. */
  workers?: number;
}

export interface CompressedLayer {
  name: string;
  /** null: left as it is (see leftAlone). */
  method: CompressionMethod | null;
  rank: number | null;
  keptChannels: number | null;
  paramFraction: number;
  params: number;
  paramsBefore: number;
  paramsRemovedElsewhere: number;
  macFraction: number | null;
  /** Weight reconstruction SQNR (dB); null when left as it is. */
  sqnrDb: number | null;
  leftAlone: string | null;
  /** compress() only: the written model's node names that compute the layer (null when left as it is). */
  nodes?: string[] | null;
}

/** A plan (schema quantlens.compression/1, without the file). */
export interface CompressionPlan {
  target: { ratio: number; by: 'params' | 'macs'; method: 'svd' | 'prune' | 'auto' };
  thresholdDb: number | null;
  achieved: { params: number; macs: number | null; paramsBefore: number; paramsAfter: number; macsBefore: number | null; macsAfter: number | null };
  layers: CompressedLayer[];
}

export interface CompressionCurve {
  method: CompressionMethod;
  refused: string | null;
  producer: string | null;
  /** Per fraction of CURVE_FRACTIONS: the point with the most parameters within it, or nulls
   * (sqnrDb Infinity, null in JSON, where that point loses nothing). */
  points: { fraction: number; keep: number | null; params: number | null; sqnrDb: number | null }[];
}

export interface Compressibility {
  schema: 'quantlens.compression/1';
  model: { name: string; bytes: number };
  fractions: number[];
  layers: {
    name: string;
    op: string;
    params: number;
    macs: number | null;
    curves: CompressionCurve[];
    /** With full: true, every point of every curve (sqnrDb Infinity for the layer as it is). */
    full?: { method: CompressionMethod; refused: string | null; producer: string | null; keep: number[]; params: number[]; macs: number[]; sqnrDb: number[]; removedElsewhere: number[] }[];
  }[];
  plan: CompressionPlan | null;
  planError: { code: string; message: string } | null;
  /** The same fraction in every layer, at the plan's size (for comparison). */
  uniform: CompressionPlan | null;
  /** With ratios: the plan (and uniform plan) at each ratio, in order. */
  plans?: { ratio: number; plan: CompressionPlan | null; planError: { code: string; message: string } | null; uniform: CompressionPlan | null }[];
}

export const COMPRESSION_SCHEMA: 'quantlens.compression/1';
export const CURVE_FRACTIONS: number[];
/** The targets 0.05, 0.10, ..., 1 (the app's slider). */
export const PLAN_RATIOS: number[];

export interface CompressibilityOptions extends CompressOptions {
  /** Every point of every curve too (layers[].full). */
  full?: boolean;
  /** A plan at each of these targets too (plans). */
  ratios?: number[];
}

export function compressibility(source: ModelSource, options?: CompressibilityOptions): Promise<Compressibility>;

export interface Compression extends CompressionPlan {
  schema: 'quantlens.compression/1';
  model: { name: string; bytes: number };
  /** Bytes of the written model. */
  size: number;
  bytes: Uint8Array | null;
  blob: Blob | null;
  output: string | null;
}

export function compress(
  source: ModelSource,
  options?: CompressOptions & {
    /** Write these ranks (layer name -> rank) instead of a plan; every other layer as it is. */
    keep?: Record<string, number>;
    /** Write the uniform plan (the same fraction in every layer) instead. */
    uniform?: boolean;
    output?: EqualizeOptions['output'];
    blob?: boolean;
  },
): Promise<Compression>;

/** One side of a compressed layer in compressionRisk(). */
export interface CompressionRiskSide {
  /** Per scheme: the SQNR (dB; after: the worst of the layers that compute it), or null. */
  sqnr: Record<string, number | null>;
  outliers: number;
  risk: Record<string, 'high' | 'medium' | 'low' | 'failed'>;
}

export interface CompressionRisk {
  schemes: string[];
  layers: {
    name: string;
    method: CompressionMethod;
    rank: number | null;
    keptChannels: number | null;
    sqnrDb: number | null;
    nodes: string[];
    /** Written nodes the compressed model's analysis has no layer for. */
    missing: string[];
    before: CompressionRiskSide | null;
    after: CompressionRiskSide & { layers: { name: string; sqnr: Record<string, number> | null; outliers: number | null }[] };
  }[];
  /** Layers at high risk in each whole model, per scheme. */
  highRisk: Record<string, { before: number; after: number }>;
}

/** What a compression plan does to quantization risk: analyze() of the original and of compress()'s bytes, and compress()'s result. */
export function compressionRisk(before: Analysis, after: Analysis, compressed: Compression): CompressionRisk;

export function toJSON(result: Analysis | Equalization | Comparison | object): any;
/**
 * The text of JSON.stringify(toJSON(result)), character for character, in pieces: for
 * results too large to hold as one string (an LLM's per-channel statistics).
 */
export function jsonPieces(result: Analysis | Equalization | Comparison | object): Generator<string, void, void>;
/**
 * Writes JSON.stringify(toJSON(result)) and a newline to a Node writable stream (e.g.
 * process.stdout) in pieces of about 1 MB, waiting for 'drain' when the stream asks.
 */
export function writeJSON(
  result: Analysis | Equalization | Comparison | object,
  stream: { write(chunk: string): boolean; once(event: 'drain', listener: () => void): unknown },
): Promise<void>;
/** The CLI's table of an analysis, riskiest layers first. */
export function formatTable(result: Analysis, options?: { top?: number; color?: boolean }): string;
/** The CLI's report of an equalization. */
export function formatEqualization(result: Equalization, options?: { top?: number; color?: boolean }): string;
/** The CLI's table of a comparison, lowest SQNR first. */
export function formatComparison(result: Comparison, options?: { top?: number; color?: boolean }): string;
/** One line of a text progress bar. */
export function formatProgress(progress?: Partial<Progress>, options?: { width?: number; label?: string }): string;
/** A pair side's quantization in words, e.g. 'int8 per-channel (DequantizeLinear)'. */
export function quantizationText(side: { quant: QuantInfo | null; dtype?: string }): string;
/** An SQNR in dB with one decimal; 'lossless' for Infinity, '-' for none. */
export function formatDb(x: number | null | undefined): string;
/** The shortest decimal that reads back as the same float32; null for non-finite values. */
export function float32Number(x: number): number | null;

// ------------------------------------------------------------------ exports to other tools

export function csvField(value: unknown): string;
export function csvNumber(x: number | null | undefined): string;
export function csvFloat32(x: number | null | undefined): string;
export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string;
export declare const LAYER_COLUMNS: readonly string[];
export declare const CHANNEL_COLUMNS: readonly string[];
export declare const PAIR_COLUMNS: readonly string[];
export declare const PAIR_CHANNEL_COLUMNS: readonly string[];
export declare const EQUALIZATION_COLUMNS: readonly string[];
/** One row per analysed layer, riskiest first (RFC 4180, CRLF). */
export function analysisLayersCsv(result: Analysis): string;
/** One row per output channel. */
export function analysisChannelsCsv(result: Analysis): string;
export function comparisonPairsCsv(result: Comparison): string;
export function comparisonChannelsCsv(result: Comparison): string;
export function equalizationCsv(result: Equalization): string;

export type ModelExplorerMetric = Scheme | 'outliers';
export declare const MODEL_EXPLORER_METRICS: readonly ModelExplorerMetric[];
export declare const RISK_COLORS: Readonly<Record<'high' | 'medium' | 'low' | 'failed', string>>;
/** The value written for an infinite SQNR. */
export declare const LOSSLESS_DB: number;
/** Node data for Google's Model Explorer, coloured by a metric. */
export function modelExplorerNodeData(
  analysis: Analysis,
  options?: { metric?: ModelExplorerMetric },
): {
  nodeData: object;
  graphId: string;
  metric: ModelExplorerMetric;
  results: number;
  skipped: { layer: string; reason: string }[];
};
/** The pairs whose A or B layer name matches, with the summary recomputed. */
export function selectComparison(result: Comparison, select: RegExp | ((name: string) => boolean)): Comparison;
/** The changed layers whose name matches, with the SQNR summary recomputed. */
export function selectEqualization(result: Equalization, select: RegExp | ((name: string) => boolean)): Equalization;
/** compare()'s summary over the given pairs. */
export function comparisonSummary(pairs: Pair[], unmatched: { a: string[]; b: string[] }): ComparisonSummary;

// ------------------------------------------------------------------ report, core, worker

export interface ReportInput {
  analysis: Analysis;
  equalization?: Equalization | null;
  comparison?: Comparison | null;
  /** The analysis of the comparison's model B. */
  analysisB?: Analysis | null;
}

/**
 * The self-contained HTML report (the app's "Save report"): its text. Reads the built app
 * (web/dist/app/index.html in the package): with fs under Node, by fetch in browsers.
 */
export function saveReport(result: ReportInput, options?: { title?: string }): Promise<string>;

/**
 * Where the WebAssembly core comes from, for this realm (page, worker, Node process); call
 * it before the first analyze/equalize/compare. wasmBinary: the .wasm bytes. wasmUrl: its
 * URL (relative URLs resolve against the page; under Node a file: URL or a path is read).
 * wasmModule: the .wasm compiled already (WebAssembly.compile); a pool's workers receive the
 * module their realm compiled, and share its code.
 */
export function configureCore(options?: {
  wasmBinary?: Uint8Array | ArrayBuffer;
  wasmUrl?: string | URL;
  wasmModule?: WebAssembly.Module;
}): void;

/**
 * Where this realm's browser pool workers come from (analyze, compare and compressibility
 * use one per core for large models): a script serving quantlens's pool when started
 * with the name 'quantlens-pool' (web/src/pool-worker.js, or a bundle of quantlens/worker,
 * which includes it), as a URL or as its text (a blob: URL is made of it in this realm),
 * started as `type` ('module' by default). Without it, pool-worker.js beside the package's
 * pool.js; inside a quantlens/worker, that worker's own script. null: the default again.
 */
export function configurePool(
  options: { workerUrl: string | URL; type?: 'module' | 'classic' } | { workerSource: string; type?: 'module' | 'classic' } | null,
): void;

/** Files for the worker: the model, or the model and its external data files (matched by name). */
/** A file of a folder picked or dropped, with its path in that folder ('llm/model.onnx.data'):
 * external data locations are resolved against the model's folder by these paths. */
export interface PickedFile {
  file: Blob;
  path: string;
}
export type WorkerFiles = Blob | Uint8Array | ArrayBuffer | (Blob | Uint8Array | ArrayBuffer | PickedFile)[];

/** Options for a worker call: as for the function itself, except that no option may be a function (they cannot reach a worker). */
export interface WorkerAnalyzeOptions extends CallOptions {
  histogramBins?: number;
  compressibility?: AnalyzeOptions['compressibility'];
  blockSize?: number;
  externalData?: Record<string, Uint8Array | ArrayBuffer | Blob>;
  layers?: RegExp;
  /** Each layer as it is finished, posted by the worker (this function stays on the page). */
  onLayer?: (layer: Layer, info: LayerArrival) => void;
}

export interface WorkerClient {
  analyze(files: WorkerFiles, options?: WorkerAnalyzeOptions): Promise<Analysis>;
  equalize(files: WorkerFiles, options?: EqualizeOptions): Promise<Equalization>;
  compressibility(files: WorkerFiles, options?: CompressibilityOptions): Promise<Compressibility>;
  compress(files: WorkerFiles, options?: Parameters<typeof compress>[1]): Promise<Compression>;
  compare(filesA: WorkerFiles, filesB: WorkerFiles, options?: CompareOptions): Promise<Comparison>;
  /** Ends every pending job at once (they reject with code ABORTED) and starts a fresh worker. */
  cancel(): void;
  /** Ends the worker and every pending job; later calls reject with code ABORTED. */
  terminate(): void;
}

/**
 * analyze/equalize/compare in a Web Worker running 'quantlens/worker'.
 * @param workerOrFactory  a function returning a new Worker (the client then goes on after
 *   cancel()), a Worker, or nothing: a module worker from the package's worker.js.
 * @param config  sent to every worker started: where its .wasm comes from.
 */
export function createWorkerClient(
  workerOrFactory?: Worker | (() => Worker) | null,
  config?: { wasmBinary?: Uint8Array | ArrayBuffer; wasmUrl?: string | URL },
): WorkerClient;

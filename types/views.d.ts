// TypeScript declarations for 'quantlens/views': the app's views (D3; data in, DOM out).
// Each appends its own root element to `element`, carries its own styles, and returns
// { destroy() }, which removes it.
import type { Analysis, Layer, Comparison, Compressibility, CompressionRisk, Equalization, Pair } from './index.js';

export interface View {
  destroy(): void;
  /** The view's root element (model and layer views). */
  root?: HTMLElement;
}

/** Every weight layer: SQNR chart, outlier channels and a sortable, filterable table. */
export function renderModelView(
  element: HTMLElement,
  analysis: Analysis,
  options?: {
    onSelect?: (position: number) => void;
    /** While layers are still arriving, how many there will be (the chart keeps room for them). */
    slots?: number;
    /** The scheme risk colours, counts and sort follow (a key of Analysis.schemes; default 'int8PerTensor'). */
    scheme?: string;
    /** Called when the user picks another scheme. */
    onScheme?: (scheme: string) => void;
    /** An equalize() result: the verdict and the why lines say what CLE brings. */
    equalization?: Equalization | null;
    /** A position marked as selected when drawn (a layer chosen in another view). */
    selected?: number;
    /** What the user chose in an earlier rendering (its viewState()): drawn as it was left. */
    view?: ModelViewState | null;
  },
): ModelView;

/** What the user chose in the model view: sort, filters, chart pair, focus and caret, the table's scroll. */
export interface ModelViewState {
  sort: { key: string; dir: 1 | -1 };
  text: string;
  op: string;
  risk: string;
  pair: [string, string];
  focus:
    | { on: 'text'; start: number | null; end: number | null; direction: string | null }
    | { on: 'select'; which: 'op' | 'risk' | 'scheme' | 'pair' }
    | { on: 'sort'; key: string }
    | { on: 'row'; name: string | null }
    | null;
  scroll: { top: number; left: number };
}

/** The model view: what renderModelView returns. */
export interface ModelView extends View {
  /** What the user chose, to draw the view again as it was left (the `view` option). */
  viewState(): ModelViewState;
}

/** The graph view: what renderGraphView returns. */
export interface GraphView extends View {
  /** Resolves when the first drawing is done. */
  ready: Promise<void>;
  /** Marks layer `position` and brings its node into view, opening the groups around it. */
  select(position: number | null): Promise<void>;
  /** Brings node `id` (its position in analysis.graph.nodes) into view, opening the groups around it. */
  reveal(id: number): Promise<void>;
  /** Marks the nodes whose name contains `text` (any case) and reveals the first. */
  search(text: string): Promise<void>;
  svg(): SVGSVGElement | null;
}

/**
 * The network as a layered graph (analysis.graph): weight layers coloured by risk under `scheme`,
 * outlier counts as badges, If/Loop/Scan bodies and name scopes as groups that open and shut,
 * pan, zoom, fit and search; with `equalization`, CLE's sequences and stops drawn on it.
 */
export function renderGraphView(
  element: HTMLElement,
  analysis: Analysis,
  options?: {
    scheme?: string;
    onScheme?: (scheme: string) => void;
    /** The selected layer's position. */
    selected?: number | null;
    /** Called with a layer's position when its node is clicked (or Enter). */
    onSelect?: (position: number) => void;
    equalization?: Equalization | null;
  },
): GraphView;

/** One layer's channels: ranges, scatters, histograms. `layer`: its position, its name, or the layer object. */
export function renderLayerView(
  element: HTMLElement,
  analysis: Analysis,
  layer: number | string | Layer,
  options?: {
    /** The scheme whose risk, why line and worst channel are shown (default 'int8PerTensor'). */
    scheme?: string;
    /** The layer's statistics after equalization (an equalize() layer's `after`). */
    after?: { sqnr: Record<string, number> } | null;
  },
): View;

/** What equalization changed; the download button appears when onDownload is given. */
export function renderEqualizationView(
  element: HTMLElement,
  equalization: Equalization,
  options?: {
    onDownload?: () => void;
    /** "Open the equalized model": analyse it in the page, without a download. */
    onAnalyze?: () => void;
    /** "Compare with the original", without a download. */
    onCompare?: () => void;
    /** Called with a layer's name when the user picks a layer in the view. */
    onSelect?: (name: string) => void;
  },
): View;

/** Two models' weights, pair by pair and channel by channel. */
export function renderCompareView(
  element: HTMLElement,
  comparison: Comparison,
  options?: { onSelect?: (pair: Pair, index: number) => void },
): View;

/** The compressibility view: what renderCompressionView returns. */
export interface CompressionView extends View {
  /** Shows the plan at ratio `r` (one of the result's plans); false when there is none. */
  setRatio(r: number): boolean;
  /** Draws the curves of layer `name`. */
  select(name: string): void;
  /** Shows what the plan at `ratio` does to quantization risk. */
  setRisk(risk: { ratio: number; result: CompressionRisk }): void;
}

/**
 * compressibility()'s result (best with full: true and ratios): the layers ranked by the
 * fraction of their parameters they keep at a weight SQNR, each layer's curves per method
 * with the plan's point, and the plan at a target moved by a slider.
 */
export function renderCompressionView(
  element: HTMLElement,
  compressibility: Compressibility,
  options?: {
    /** The target shown first (default: the result's plan). */
    ratio?: number;
    /** The weight SQNR (dB) the ranking uses (default 30). */
    sqnrDb?: number;
    /** The layer whose curves are drawn (default: the most compressible). */
    selected?: string | null;
    onRatio?: (ratio: number) => void;
    onSelect?: (name: string) => void;
    /** Shows a download button; called with the target shown. */
    onDownload?: (ratio: number) => void;
    /** Shows an "Analyse the compressed model" button; called with the target shown (then setRisk). */
    onRisk?: (ratio: number) => void;
    /** What the plan at `ratio` does to quantization risk (compressionRisk()); default compressibility.risk. */
    risk?: { ratio: number; result: CompressionRisk } | null;
  },
): CompressionView;

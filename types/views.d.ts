// TypeScript declarations for 'quantlens/views': the app's views (D3; data in, DOM out).
// Each appends its own root element to `element`, carries its own styles, and returns
// { destroy() }, which removes it.
import type { Analysis, Layer, Comparison, Equalization, Pair } from './index.js';

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
  },
): View;

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
  },
): View;

/** Two models' weights, pair by pair and channel by channel. */
export function renderCompareView(
  element: HTMLElement,
  comparison: Comparison,
  options?: { onSelect?: (pair: Pair, index: number) => void },
): View;

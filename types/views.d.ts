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
/** `slots`: while layers are still arriving, how many there will be (the chart keeps room for them). */
export function renderModelView(
  element: HTMLElement,
  analysis: Analysis,
  options?: { onSelect?: (position: number) => void; slots?: number },
): View;

/** One layer's channels: ranges, scatters, histograms. `layer`: its position, its name, or the layer object. */
export function renderLayerView(element: HTMLElement, analysis: Analysis, layer: number | string | Layer): View;

/** What equalization changed; the download button appears when onDownload is given. */
export function renderEqualizationView(
  element: HTMLElement,
  equalization: Equalization,
  options?: { onDownload?: () => void },
): View;

/** Two models' weights, pair by pair and channel by channel. */
export function renderCompareView(
  element: HTMLElement,
  comparison: Comparison,
  options?: { onSelect?: (pair: Pair, index: number) => void },
): View;

// The per-channel range chart: each output channel's min, max and mean weight along x
// (AIMET's visualize_weight_ranges), optionally with a mean ± std band, a second set of
// ranges drawn dotted with the gap between the two shaded (before and after equalization,
// model A and model B), and flagged (outlier) channels marked. The layer, equalization and
// compare views all draw it with this one function.
//
//   channelRangeChart(data, options) -> { svg, x, y, overlay, rescale(x) }
//
// Data in, SVG out (as d3 and Observable Plot charts are): `svg` is a detached <svg>
// element for the caller to place. `x` is the channel scale as first drawn and `y` the
// weight scale; `overlay` (a d3 selection) takes the pointer for the tooltip and for a
// zoom behaviour the caller may attach; rescale(x) redraws for a new channel scale (zoom
// and pan are along x only, the weight axis stays put).
//
// Contract (tests rely on it): the plot is g.ql-range-plot; the ranges are
// path.ql-range-{max,min,mean}, the dotted ones path.ql-range-before-{max,min,mean}
// (with a stroke-dasharray), the shaded gaps path.ql-range-gap (one for max, one for
// min); per-channel points circle.ql-range-point-{max,min}; one .ql-flagged element per
// flagged channel (data-channel), whatever the zoom.
import * as d3 from 'd3';
import { chartFrame, channelHover, channelTickCount, clipped, colors, drawAxes, intTicks, visibleChannels } from './common.js';

const KEYS = ['max', 'min', 'mean'];

/**
 * @param data {{ min, max, mean?, std?, before?: { min, max, mean? }, flagged?: Iterable<number>, worst?: number }}
 *   `worst` (a channel index) is marked by a dashed vertical rule (line.ql-worst[data-channel]).
 *   per-channel arrays (typed arrays or arrays; non-finite values leave gaps). `std` adds the
 *   mean ± std band; `before` adds dotted ranges and the shaded gap to them.
 * @param options
 *   width, height, margin    outer size and margins of the <svg>
 *   xLabel, yLabel           axis labels (default 'output channel', 'weight value')
 *   domain                   the weight axis [lo, hi] (made nice); default: everything drawn
 *   zero                     include 0 in the default domain
 *   points                   dots on the max and min of each channel: 'auto' (when channels are
 *                            7 px apart or more), a number N (when there are at most N channels), false
 *   tip, tipRows             a tooltip (common.js) and tipRows(i) -> [title, [[label, value], ...]]
 *   ariaLabel                the chart's accessible name
 *   clipMarks                values outside a given `domain` are marked by a triangle at the edge
 *                            they pass (path.ql-range-clipped, one per value), so a clipped outlier
 *                            still shows where it is
 */
export function channelRangeChart(
  data,
  {
    width,
    height,
    margin,
    xLabel = 'output channel',
    yLabel = 'weight value',
    domain,
    zero = false,
    points = 'auto',
    tip,
    tipRows,
    ariaLabel,
    clipMarks = false,
  },
) {
  const n = Math.min(
    data.min.length,
    data.max.length,
    data.before ? Math.min(data.before.min.length, data.before.max.length) : Infinity,
  );
  const f = chartFrame(null, { width, height, margin });
  if (ariaLabel) f.svg.attr('role', 'img').attr('aria-label', ariaLabel);
  const x0 = d3.scaleLinear([-0.5, n - 0.5], [0, f.width]);
  const y = d3.scaleLinear(domain ?? defaultDomain(data, n, zero), [f.height, 0]).nice();
  const axes = drawAxes(f.g, {
    x: x0,
    y,
    width: f.width,
    height: f.height,
    xLabel,
    yLabel,
    xFormat: intTicks,
    xTicks: channelTickCount(x0, f.width),
  });
  // The plot is clipped a few px outside the axes, so the marks of channels at the ends of the
  // domain (flagged dots, clipped-value triangles) stay whole.
  const plot = clipped(f.g, { width: f.width, height: f.height + 5, top: 5 }).attr('class', 'ql-range-plot');
  const flagged = [...(data.flagged ?? [])].sort((a, b) => a - b);
  const B = data.before;
  const thin = n > 400 ? 1 : 1.5; // many channels: thinner lines stay apart
  let x = x0;

  function rescale(nx) {
    x = nx;
    axes.x.call(d3.axisBottom(x).ticks(channelTickCount(x, f.width)).tickFormat(intTicks));
    plot.selectAll('*').remove();
    const idx = visibleChannels(x, n);
    const finite =
      (...vs) =>
      (i) =>
        vs.every((v) => Number.isFinite(v[i]));
    const line = (v) =>
      d3
        .line()
        .x((i) => x(i))
        .y((i) => y(v[i]))
        .defined(finite(v))(idx);
    const area = (lo, hi) =>
      d3
        .area()
        .x((i) => x(i))
        .y0((i) => y(lo[i]))
        .y1((i) => y(hi[i]))
        .defined(finite(lo, hi))(idx);
    plot
      .append('line')
      .attr('class', 'ql-range-zero')
      .attr('x1', 0)
      .attr('x2', f.width)
      .attr('y1', y(0))
      .attr('y2', y(0))
      .attr('stroke', '#bbb');
    if (data.std && data.mean) {
      const sd = data.std;
      const m = data.mean;
      plot
        .append('path')
        .attr('class', 'ql-range-band')
        .attr('fill', colors.band)
        .attr('fill-opacity', 0.35)
        .attr(
          'd',
          d3
            .area()
            .x((i) => x(i))
            .y0((i) => y(m[i] - sd[i]))
            .y1((i) => y(m[i] + sd[i]))
            .defined(finite(m, sd))(idx),
        );
    }
    if (B) {
      for (const key of ['max', 'min']) {
        plot
          .append('path')
          .attr('class', `ql-range-gap ql-range-gap-${key}`)
          .attr('d', area(B[key], data[key]))
          .attr('fill', colors.before)
          .attr('fill-opacity', 0.3)
          .attr('stroke', 'none');
      }
    }
    for (const key of KEYS) {
      if (B?.[key]) {
        plot
          .append('path')
          .attr('class', `ql-range-before-${key}`)
          .attr('d', line(B[key]))
          .attr('fill', 'none')
          .attr('stroke', colors[key])
          .attr('stroke-width', thin)
          .attr('stroke-dasharray', '2.5 2.5');
      }
      if (data[key]) {
        plot
          .append('path')
          .attr('class', `ql-range-${key}`)
          .attr('d', line(data[key]))
          .attr('fill', 'none')
          .attr('stroke', colors[key])
          .attr('stroke-width', B ? thin + 0.4 : thin);
      }
    }
    const dots = points === 'auto' ? x(1) - x(0) >= 7 : typeof points === 'number' && n <= points;
    if (dots) {
      for (const key of ['max', 'min']) {
        plot
          .append('g')
          .selectAll('circle')
          .data(idx.filter(finite(data[key])))
          .join('circle')
          .attr('class', `ql-range-point-${key}`)
          .attr('cx', (i) => x(i))
          .attr('cy', (i) => y(data[key][i]))
          .attr('r', 2.2)
          .attr('fill', colors[key]);
      }
    }
    if (clipMarks) {
      const [lo, hi] = y.domain();
      const out = [];
      for (const set of [data, B]) {
        if (!set) continue;
        for (const key of ['max', 'min'])
          for (const i of idx) {
            const v = set[key][i];
            if (v > hi) out.push({ i, up: true, color: colors[key] });
            else if (v < lo) out.push({ i, up: false, color: colors[key] });
          }
      }
      plot
        .append('g')
        .selectAll('path')
        .data(out)
        .join('path')
        .attr('class', 'ql-range-clipped')
        .attr('d', (o) => {
          const cx = x(o.i);
          const e = o.up ? y(hi) : y(lo);
          return o.up
            ? `M${cx - 4},${e + 1}L${cx + 4},${e + 1}L${cx},${e - 5}Z`
            : `M${cx - 4},${e - 1}L${cx + 4},${e - 1}L${cx},${e + 5}Z`;
        })
        .attr('fill', (o) => o.color)
        .attr('stroke', '#fff')
        .attr('stroke-width', 0.6);
    }
    if (Number.isInteger(data.worst) && data.worst >= 0 && data.worst < n) {
      plot
        .append('line')
        .attr('class', 'ql-worst')
        .attr('data-channel', data.worst)
        .attr('x1', x(data.worst))
        .attr('x2', x(data.worst))
        .attr('y1', 0)
        .attr('y2', f.height)
        .attr('stroke', '#000')
        .attr('stroke-width', 1.2)
        .attr('stroke-dasharray', '3 3');
    }
    // Every flagged channel, whether in view or not (clipped when not), so the marks count them.
    const flags = plot
      .append('g')
      .selectAll('g')
      .data(flagged)
      .join('g')
      .attr('class', 'ql-flagged')
      .attr('data-channel', (c) => c);
    flags
      .append('line')
      .attr('x1', (c) => x(c))
      .attr('x2', (c) => x(c))
      .attr('y1', (c) => y(data.min[c]))
      .attr('y2', (c) => y(data.max[c]))
      .attr('stroke', colors.flagged)
      .attr('stroke-width', 2);
    for (const key of ['max', 'min']) {
      flags
        .append('circle')
        .attr('class', `ql-flag-${key}`)
        .attr('r', 3.5)
        .attr('fill', colors.flagged)
        .attr('cx', (c) => x(c))
        .attr('cy', (c) => y(data[key][c]));
    }
  }
  rescale(x0);
  const overlay = channelHover(f, n, () => x, tip, tipRows);
  return { svg: f.svg.node(), x: x0, y, overlay, rescale };
}

// Everything drawn: min, max (of both sets) and mean ± std; 0 too when `zero`.
function defaultDomain(data, n, zero) {
  let lo = zero ? 0 : Infinity;
  let hi = zero ? 0 : -Infinity;
  const take = (v) => {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  };
  for (let i = 0; i < n; i++) {
    for (const set of [data, data.before]) {
      if (!set) continue;
      take(set.min[i]);
      take(set.max[i]);
    }
    if (data.std && data.mean) {
      take(data.mean[i] - data.std[i]);
      take(data.mean[i] + data.std[i]);
    }
  }
  if (lo > hi) return [-1, 1];
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
  return [lo, hi];
}

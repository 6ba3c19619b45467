// Text in the views for people who cannot see all of it: names clipped in the middle to
// fit, and text for screen readers only.
// `s` shortened to `max` characters by cutting its middle (layer names differ at both ends).
export function clipMiddle(s, max) {
  const str = String(s ?? '');
  if (str.length <= max || max < 5) return str;
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${str.slice(0, head)}…${str.slice(str.length - (keep - head))}`;
}

// Appends to each element of the d3 selection `sel` text for screen readers only
// (visually hidden with the .ql-sr-only class, still part of the element's text).
export function srOnly(sel, text) {
  return sel.append('span').attr('class', 'ql-sr-only').text(text);
}

// Shortens (middle-clips) the text of each SVG <text> in the d3 selection `sel` until it
// fits `maxWidth` px (the view's tooltip shows the whole name). Needs layout; a no-op without it.
export function fitText(sel, maxWidth) {
  sel.each(function fit() {
    const full = this.textContent;
    if (!this.getComputedTextLength || this.getComputedTextLength() <= maxWidth) return;
    let lo = 4;
    let hi = full.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      this.textContent = clipMiddle(full, mid);
      if (this.getComputedTextLength() <= maxWidth) lo = mid;
      else hi = mid - 1;
    }
    this.textContent = clipMiddle(full, lo);
  });
  return sel;
}

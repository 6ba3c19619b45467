// The one colour-blind-safe palette (Okabe & Ito, "Color Universal Design", 2008) and
// what each colour means, for the views and for exports that colour things (Model
// Explorer node data). No DOM and no d3 here, so the CLI can use it too.
export const palette = {
  black: '#000000',
  orange: '#E69F00',
  sky: '#56B4E9',
  green: '#009E73',
  yellow: '#F0E442',
  blue: '#0072B2',
  vermillion: '#D55E00',
  purple: '#CC79A7',
  grey: '#7f7f7f',
};

// Roles: what each colour means everywhere.
export const colors = {
  min: palette.blue,
  max: palette.vermillion,
  mean: palette.black,
  band: palette.sky, // mean ± std
  flagged: palette.purple, // outlier channels
  before: palette.grey,
  after: palette.blue,
  risk: { high: palette.vermillion, medium: palette.orange, low: palette.green, failed: palette.grey },
  schemes: {
    int8PerTensor: palette.vermillion,
    int8PerChannel: palette.blue,
    int4PerTensor: palette.orange,
    int4PerChannel: palette.sky,
    int4Block32: palette.green,
    int4Block128: palette.black,
    // an extra int4Block<N> (the blockSize option): colors.schemes[k] ?? palette.grey
  },
};

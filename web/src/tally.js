// The counts over a model's layers that a summary gives (analyze()'s summary, and the
// app's header while layers are still arriving): one place for what is counted.
export function tallyLayers(layers) {
  let parameters = 0;
  let outlierChannels = 0;
  let layersWithOutliers = 0;
  let inputOutlierChannels = 0;
  let layersWithInputOutliers = 0;
  let failed = 0;
  for (const l of layers) {
    if (l.error) {
      failed++;
      continue;
    }
    parameters += l.shape.reduce((a, b) => a * b, 1);
    outlierChannels += l.outlierChannels.length;
    if (l.outlierChannels.length) layersWithOutliers++;
    const inOutliers = l.inputChannels ? l.inputChannels.outliers.length : 0;
    inputOutlierChannels += inOutliers;
    if (inOutliers) layersWithInputOutliers++;
  }
  return {
    layers: layers.length,
    analysed: layers.length - failed,
    failed,
    parameters,
    layersWithOutliers,
    outlierChannels,
    layersWithInputOutliers,
    inputOutlierChannels,
  };
}

// Equalizing a sequence: the scales of scaling.hpp applied link by link, in sweeps
// over the sequence, until every scale of a sweep is within 1 +- tolerance or
// maxIterations sweeps have run. A depthwise layer with a neighbour on each side is
// balanced as a triple (unless options.triples is off). The sweeps work on each
// layer's range matrix and accumulate the scales per channel (EqLayer::outDiv,
// inMul); applyScales then scales the weights and biases once.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "cle/cle.hpp"
#include "cle/layers.hpp"
#include "cle/sequences.hpp"

namespace ql::cle {

// Equalizes one sequence (layer indices in graph order) and appends it to report.sequences.
// Near-dead channels met on the way are added to report.deadChannels once each,
// `deadSeen` remembering them across sequences.
// False (layers.error set) when a weight could not be read or held.
bool equalizeSequence(const std::vector<size_t>& chain, EqLayers& layers, const ModelIndex& index, const Chains& chains,
                      const Options& options, std::set<std::string>& deadSeen, Report& report);

// Scales the weight and bias of a touched layer by its accumulated scales:
// W'[o, i] = W[o, i] * inMul[i] / outDiv[o], b'[o] = b[o] / outDiv[o].
void applyScales(EqLayer& w, EqLayers& layers);

}  // namespace ql::cle

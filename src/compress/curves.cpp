#include "compress/curves.hpp"

namespace ql::compress {

const char* methodName(Method method) {
  switch (method) {
    case Method::WeightSvd:
      return "weight-svd";
    case Method::SpatialSvd:
      return "spatial-svd";
    case Method::ChannelPrune:
      return "channel-prune";
  }
  return "unknown";
}

}  // namespace ql::compress

#include "analysis/nbits.hpp"

#include <string>

namespace ql::analysis {

Result<NBitsShape> makeNBitsShape(int64_t K, int64_t N, int64_t bits, int64_t blockSize) {
  auto bad = [](const std::string& what) { return makeError(ErrorCode::Unsupported, "MatMulNBits " + what); };
  if (bits != 4 && bits != 8) return bad("with bits = " + std::to_string(bits) + " is not read (QuantLens reads 4 and 8 bits)");
  if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0 || blockSize > (int64_t{1} << 30))
    return bad("block_size " + std::to_string(blockSize) + " is not a power of two of at least 16");
  if (K < 1 || N < 1) return bad("attributes K = " + std::to_string(K) + ", N = " + std::to_string(N) + " are not both positive");
  NBitsShape s;
  s.bits = static_cast<int>(bits);
  s.K = static_cast<uint64_t>(K);
  s.N = static_cast<uint64_t>(N);
  s.blockSize = static_cast<uint64_t>(blockSize);
  s.blocksPerCol = (s.K + s.blockSize - 1) / s.blockSize;
  s.blobSize = s.blockSize * static_cast<uint64_t>(bits) / 8;
  // Every size below must fit comfortably (the largest is N * K floats once dequantized).
  const uint64_t limit = uint64_t{1} << 40;
  if (s.K > limit || s.N > limit || s.columnBytes() > limit / s.N || s.K > limit / s.N)
    return bad("of K = " + std::to_string(K) + ", N = " + std::to_string(N) + " is too large");
  return s;
}

Result<std::vector<double>> unpackNBitsZeroPoints(const NBitsShape& s, const std::vector<double>& packed) {
  const uint64_t per = s.zeroPointBytesPerColumn();
  if (packed.size() != s.N * per) {
    return makeError(ErrorCode::InvalidModel, "MatMulNBits packed zero_points hold " + std::to_string(packed.size()) +
                                                  " bytes, expected " + std::to_string(s.N * per) + " (" + std::to_string(per) +
                                                  " per column of " + std::to_string(s.blocksPerCol) + " blocks at " +
                                                  std::to_string(s.bits) + " bits)");
  }
  std::vector<double> zp(s.N * s.blocksPerCol);
  for (uint64_t n = 0; n < s.N; ++n) {
    for (uint64_t b = 0; b < s.blocksPerCol; ++b) {
      const unsigned byte = static_cast<unsigned>(packed[n * per + b * s.bits / 8]) & 0xFFu;
      zp[n * s.blocksPerCol + b] = s.bits == 8 ? byte : (b % 2 ? byte >> 4 : byte & 0xFu);
    }
  }
  return zp;
}

Error dequantizeNBitsColumns(const NBitsShape& s, const uint8_t* codes, uint64_t codeBytes, uint64_t firstCol, uint64_t cols,
                             const std::vector<double>& scales, const std::vector<double>& zeroPoints, float* out) {
  const uint64_t blocks = s.N * s.blocksPerCol;
  if (firstCol > s.N || cols > s.N - firstCol || codeBytes != cols * s.columnBytes())
    return makeError(ErrorCode::InvalidArgument, "MatMulNBits: columns " + std::to_string(firstCol) + " + " +
                                                     std::to_string(cols) + " with " + std::to_string(codeBytes) +
                                                     " bytes of codes do not fit N = " + std::to_string(s.N) + ", " +
                                                     std::to_string(s.columnBytes()) + " bytes per column");
  if (scales.size() != blocks)
    return makeError(ErrorCode::InvalidModel, "MatMulNBits scales hold " + std::to_string(scales.size()) + " values, expected " +
                                                  std::to_string(blocks) + " (N * ceil(K / block_size))");
  if (!zeroPoints.empty() && zeroPoints.size() != blocks)
    return makeError(ErrorCode::InvalidModel, "MatMulNBits zero points hold " + std::to_string(zeroPoints.size()) +
                                                  " values, expected " + std::to_string(blocks));
  const float defaultZp = static_cast<float>(1u << (s.bits - 1));
  for (uint64_t c = 0; c < cols; ++c) {
    const uint8_t* col = codes + c * s.columnBytes();
    float* o = out + c * s.K;
    const uint64_t n = firstCol + c;
    for (uint64_t b = 0; b < s.blocksPerCol; ++b) {
      const float scale = static_cast<float>(scales[n * s.blocksPerCol + b]);
      const float zp = zeroPoints.empty() ? defaultZp : static_cast<float>(zeroPoints[n * s.blocksPerCol + b]);
      const uint8_t* blob = col + b * s.blobSize;
      const uint64_t k0 = b * s.blockSize;
      const uint64_t end = k0 + s.blockSize < s.K ? s.blockSize : s.K - k0;  // padded codes are ignored
      for (uint64_t i = 0; i < end; ++i) {
        const unsigned code = s.bits == 8 ? blob[i] : (i % 2 ? blob[i / 2] >> 4 : blob[i / 2] & 0xFu);
        o[k0 + i] = (static_cast<float>(code) - zp) * scale;
      }
    }
  }
  return Error{};
}

}  // namespace ql::analysis

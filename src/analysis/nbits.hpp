// MatMulNBits (com.microsoft): weights quantized block-wise along K, packed in uint8.
//
// Facts, from ONNX Runtime's contrib operator documentation (docs/ContribOperators.md,
// com.microsoft.MatMulNBits), its CPU kernel (contrib_ops/cpu/quantization/
// matmul_nbits.cc, matmul_nbits_impl.cc), MLAS's q4_dq.cpp and
// ../shared/notes/quant-formats.md, and checked by running generated models in
// onnxruntime-node (tests/js/nbits.test.mjs):
//   - attributes K, N, bits, block_size (a power of two >= 16);
//   - B is uint8 [N, n_blocks_per_col, blob_size], n_blocks_per_col = ceil(K / block_size),
//     blob_size = block_size * bits / 8: column n's K codes run along K, low bits of a byte
//     first (4 bits: element 2i in the low nibble, 2i+1 in the high nibble); the last
//     block of a column is padded when K is not a multiple of block_size, and the padding
//     codes are ignored;
//   - scales: N * n_blocks_per_col values (float or float16), block b of column n at n * n_blocks_per_col + b;
//   - zero_points (optional): uint8, ceil(n_blocks_per_col * bits / 8) bytes per column,
//     packed like the codes; or float, one per block like the scales. Absent: 2^(bits - 1);
//   - the dequantized weight W is [K, N] (MatMul's B): W[k][n] = (code - zp) * scale of
//     block (n, k / block_size).
// QuantLens reads bits 4 and 8 (the ones the quantizers write).
#pragma once
#include <cstdint>
#include <vector>

#include "common/result.hpp"

namespace ql::analysis {

struct NBitsShape {
  int bits = 0;
  uint64_t K = 0, N = 0, blockSize = 0;
  uint64_t blocksPerCol = 0;  // ceil(K / blockSize)
  uint64_t blobSize = 0;      // bytes per block: blockSize * bits / 8
  uint64_t columnBytes() const { return blocksPerCol * blobSize; }
  uint64_t byteSize() const { return N * columnBytes(); }
  uint64_t zeroPointBytesPerColumn() const { return (blocksPerCol * static_cast<uint64_t>(bits) + 7) / 8; }
};

// Checks the attributes (K, N >= 1, bits 4 or 8, block_size a power of two >= 16, sizes
// that fit in 64 bits); the error says which one is wrong.
Result<NBitsShape> makeNBitsShape(int64_t K, int64_t N, int64_t bits, int64_t blockSize);

// One zero point per block (N * blocksPerCol values) from a packed uint8 zero_points
// input (its bytes as values 0..255), checked for size.
Result<std::vector<double>> unpackNBitsZeroPoints(const NBitsShape& s, const std::vector<double>& packedBytes);

// Dequantizes columns [firstCol, firstCol + cols) whose packed codes are `codes` (exactly
// cols * columnBytes() bytes) into out[cols * K], column by column (out[c * K + k] is
// W[k][firstCol + c]). `scales` has N * blocksPerCol values; `zeroPoints` the same
// count, or is empty (default 2^(bits - 1)). Sizes are checked before any read.
Error dequantizeNBitsColumns(const NBitsShape& s, const uint8_t* codes, uint64_t codeBytes, uint64_t firstCol, uint64_t cols,
                             const std::vector<double>& scales, const std::vector<double>& zeroPoints, float* out);

}  // namespace ql::analysis

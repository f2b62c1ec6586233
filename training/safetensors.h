#pragma once
// Writing and reading tensors in the safetensors format (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length, a JSON header of name -> {dtype, shape, data_offsets}
// (and an optional "__metadata__" of strings), then the raw little-endian data. Python reads it
// with a few lines of struct and json (export/python/asiarch_torch.py), no extra packages.
// Torch-free.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace asiarch::safetensors {

enum class DType { F32, F64, I64 };

struct TensorBytes {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string data;  // row-major, little-endian, exactly the shape's size in dtype's bytes
};

// Throws std::invalid_argument unless `path` is a new path or a regular file: renaming over a
// device node or a directory would replace it.
void require_file_path(const std::filesystem::path& path);

// Writes `tensors` (in this order) and `metadata` to `path`, through a temporary file renamed
// into place, so a reader never sees half a file. Throws std::runtime_error naming the path
// (std::invalid_argument when require_file_path refuses it).
void write_file(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                const std::map<std::string, std::string>& metadata = {});

struct Contents {
  std::vector<TensorBytes> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;
};
// Reads a file write_file wrote (F32, F64 and I64 tensors). Throws std::runtime_error naming the
// path and what is wrong when it is not such a file.
Contents read_file(const std::filesystem::path& path);

}  // namespace asiarch::safetensors

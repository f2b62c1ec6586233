#include "training/safetensors.h"

#include <algorithm>
#include <bit>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "common/json_string.h"

namespace asiarch::safetensors {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; this writer copies memory as it is");

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
  }
  return "";
}

size_t dtype_bytes(DType dtype) { return dtype == DType::F32 ? 4 : 8; }

std::string header_json(const std::vector<TensorBytes>& tensors, const std::map<std::string, std::string>& metadata) {
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) json += ',';
      json.append(json_string(key)).append(":").append(json_string(value));
      first = false;
    }
    json += "}";
  }
  uint64_t offset = 0;
  for (const TensorBytes& t : tensors) {
    uint64_t elements = 1;
    std::string shape;
    for (const int64_t d : t.shape) {
      elements *= static_cast<uint64_t>(d);
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    if (elements * dtype_bytes(t.dtype) != t.data.size()) {
      throw std::logic_error("safetensors: tensor " + t.name + " has " + std::to_string(t.data.size()) + " bytes for its shape");
    }
    if (json.size() > 1) json += ",";
    json += json_string(t.name) + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
            std::to_string(offset) + "," + std::to_string(offset + t.data.size()) + "]}";
    offset += t.data.size();
  }
  json += "}";
  // The format pads the header with spaces so that the data starts 8-byte aligned.
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

// The JSON of a safetensors header: objects, arrays, strings and non-negative integers.
struct Json {
  std::variant<std::string, uint64_t, std::vector<Json>, std::vector<std::pair<std::string, Json>>> value;
};

class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : text_(text) {}

  Json document() {
    Json json = value();
    skip_space();
    if (at_ != text_.size()) fail("text after the header's object");
    return json;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("the header is not safetensors JSON (" + what + " at byte " + std::to_string(at_) + ")");
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\t' || text_[at_] == '\r')) ++at_;
  }
  void expect(char c) {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  bool next_is(char c) {
    skip_space();
    return at_ < text_.size() && text_[at_] == c;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      char c = text_[at_++];
      if (c == '\\') {
        if (at_ >= text_.size()) fail("an unfinished escape");
        const char e = text_[at_++];
        if (e == 'n') c = '\n';
        else if (e == 't') c = '\t';
        else if (e == 'r') c = '\r';
        else if (e == 'u') {
          if (at_ + 4 > text_.size()) fail("an unfinished \\u escape");
          const unsigned code = static_cast<unsigned>(std::stoul(text_.substr(at_, 4), nullptr, 16));
          at_ += 4;
          if (code > 0x7f) fail("a non-ASCII \\u escape");
          c = static_cast<char>(code);
        } else {
          c = e;
        }
      }
      out += c;
    }
    expect('"');
    return out;
  }
  Json value() {
    skip_space();
    if (at_ >= text_.size()) fail("the end of the header");
    const char c = text_[at_];
    if (c == '"') return Json{string()};
    if (c == '{') {
      ++at_;
      std::vector<std::pair<std::string, Json>> members;
      if (!next_is('}')) {
        do {
          std::string key = string();
          expect(':');
          members.emplace_back(std::move(key), value());
        } while (next_is(',') && (++at_, true));
      }
      expect('}');
      return Json{std::move(members)};
    }
    if (c == '[') {
      ++at_;
      std::vector<Json> items;
      if (!next_is(']')) {
        do items.push_back(value());
        while (next_is(',') && (++at_, true));
      }
      expect(']');
      return Json{std::move(items)};
    }
    if (c >= '0' && c <= '9') {
      uint64_t n = 0;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') n = n * 10 + static_cast<uint64_t>(text_[at_++] - '0');
      return Json{n};
    }
    fail("an unexpected character");
  }

  const std::string& text_;
  size_t at_ = 0;
};

template <typename T>
const T& as(const Json& json, const std::string& what) {
  if (const T* value = std::get_if<T>(&json.value)) return *value;
  throw std::runtime_error("the header's " + what + " has the wrong JSON type");
}

const Json& member(const Json& object, const std::string& key, const std::string& what) {
  for (const auto& [name, value] : as<std::vector<std::pair<std::string, Json>>>(object, what)) {
    if (name == key) return value;
  }
  throw std::runtime_error("the header's " + what + " has no \"" + key + "\"");
}

DType dtype_of(const std::string& name, const std::string& tensor) {
  if (name == "F32") return DType::F32;
  if (name == "F64") return DType::F64;
  if (name == "I64") return DType::I64;
  throw std::runtime_error("tensor " + tensor + " has dtype " + name + "; this reader knows F32, F64 and I64");
}

Contents parse_contents(const std::string& bytes) {
  if (bytes.size() < 8) throw std::runtime_error("it is shorter than the 8-byte header length");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (header_size > bytes.size() - 8) throw std::runtime_error("its header length " + std::to_string(header_size) + " exceeds the file");
  const std::string header = bytes.substr(8, header_size);
  const std::string_view data(bytes.data() + 8 + header_size, bytes.size() - 8 - header_size);
  Contents out;
  const Json document = HeaderParser(header).document();
  for (const auto& [name, entry] : as<std::vector<std::pair<std::string, Json>>>(document, "top level")) {
    if (name == "__metadata__") {
      for (const auto& [key, value] : as<std::vector<std::pair<std::string, Json>>>(entry, "__metadata__")) {
        out.metadata[key] = as<std::string>(value, "__metadata__ value " + key);
      }
      continue;
    }
    TensorBytes t;
    t.name = name;
    t.dtype = dtype_of(as<std::string>(member(entry, "dtype", name), name + " dtype"), name);
    uint64_t elements = 1;
    for (const Json& d : as<std::vector<Json>>(member(entry, "shape", name), name + " shape")) {
      t.shape.push_back(static_cast<int64_t>(as<uint64_t>(d, name + " shape")));
      elements *= as<uint64_t>(d, name + " shape");
    }
    const auto& offsets = as<std::vector<Json>>(member(entry, "data_offsets", name), name + " data_offsets");
    if (offsets.size() != 2) throw std::runtime_error("tensor " + name + " needs two data offsets");
    const uint64_t begin = as<uint64_t>(offsets[0], name + " offsets"), end = as<uint64_t>(offsets[1], name + " offsets");
    if (begin > end || end > data.size() || end - begin != elements * dtype_bytes(t.dtype)) {
      throw std::runtime_error("tensor " + name + " has data offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                               "] that do not fit its shape and the file");
    }
    t.data.assign(data.substr(begin, end - begin));
    out.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace

Contents read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + "; check that it exists");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  try {
    return parse_contents(bytes.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path.string() + " is not a safetensors file asiarch can read: " + e.what());
  }
}

void require_file_path(const std::filesystem::path& path) {
  std::error_code error;
  const auto status = std::filesystem::symlink_status(path, error);
  if (status.type() == std::filesystem::file_type::not_found || status.type() == std::filesystem::file_type::regular) return;
  throw std::invalid_argument(path.string() + " exists and is not a regular file; write the weights to a new path or over a file");
}

void write_file(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                const std::map<std::string, std::string>& metadata) {
  require_file_path(path);
  const std::string header = header_json(tensors, metadata);
  std::filesystem::path partial = path;
  partial += ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    uint64_t size = header.size();
    char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((size >> (8 * i)) & 0xff);
    out.write(length, sizeof length);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const TensorBytes& t : tensors) out.write(t.data.data(), static_cast<std::streamsize>(t.data.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + partial.string() + "; check the disk and the directory's permissions");
  }
  std::error_code error;
  std::filesystem::rename(partial, path, error);
  if (error) throw std::runtime_error("cannot move " + partial.string() + " to " + path.string() + ": " + error.message());
}

}  // namespace asiarch::safetensors

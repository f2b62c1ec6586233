#pragma once
// Bytes as lowercase hexadecimal, and the SHA-256 of a text so written: the form every hash and
// secret of asiarch takes in text (structural hashes, digests, worker secrets).
#include <openssl/evp.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace asiarch {

template <typename Bytes>
std::string hex_of(const Bytes& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * std::size(bytes));
  for (const auto byte : bytes) {
    const auto value = static_cast<unsigned char>(byte);
    hex += kDigits[value >> 4];
    hex += kDigits[value & 0x0f];
  }
  return hex;
}

// Throws std::runtime_error when OpenSSL fails.
inline std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  }
  return hex_of(std::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace asiarch

// SHA-256 and the hash-chain rule, over OpenSSL's EVP interface.
#include <openssl/evp.h>

#include <initializer_list>

#include "common/hex.h"
#include "storage/run_store.h"

namespace asiarch::storage {
namespace {

// Fetched once: OpenSSL 3 looks an implicitly named digest up (under a lock) at every init.
const EVP_MD* sha256_algorithm() {
  static const EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (algorithm == nullptr) throw StorageError("OpenSSL has no SHA-256 implementation; check the OpenSSL installation");
  return algorithm;
}

// One reusable digest context per thread, so that hashing each event allocates no context.
class Sha256Context {
 public:
  Sha256Context() : context_(EVP_MD_CTX_new()) {
    if (context_ == nullptr) throw StorageError("cannot allocate an OpenSSL digest context: out of memory");
  }
  ~Sha256Context() { EVP_MD_CTX_free(context_); }
  Sha256Context(const Sha256Context&) = delete;
  Sha256Context& operator=(const Sha256Context&) = delete;

  // SHA-256 of the concatenation of `parts`.
  Digest hash(std::initializer_list<std::string_view> parts) {
    Digest digest{};
    unsigned int length = 0;
    bool ok = EVP_DigestInit_ex2(context_, sha256_algorithm(), nullptr) == 1;
    for (std::string_view part : parts) ok = ok && EVP_DigestUpdate(context_, part.data(), part.size()) == 1;
    ok = ok && EVP_DigestFinal_ex(context_, digest.data(), &length) == 1 && length == digest.size();
    if (!ok) throw StorageError("OpenSSL failed to compute a SHA-256 digest");
    return digest;
  }

 private:
  EVP_MD_CTX* context_;
};

Digest hash_parts(std::initializer_list<std::string_view> parts) {
  thread_local Sha256Context context;
  return context.hash(parts);
}

std::string_view as_bytes(const Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

}  // namespace

std::string to_hex(const Digest& digest) { return hex_of(digest); }

Digest sha256(std::string_view bytes) { return hash_parts({bytes}); }

Digest chain_next(const Digest& previous, uint64_t seq, std::string_view canonical_event) {
  return hash_parts({as_bytes(previous), be64(seq), canonical_event});
}

}  // namespace asiarch::storage

#pragma once
// Byte forms of the Cap'n Proto messages (messages/asiarch.capnp):
// - canonical bytes (capnp::canonicalize: one segment, no segment table) are what the event log
//   stores and hashes; read them back with CanonicalView (a SegmentArrayMessageReader);
// - OutboxWriter collects what an actor sends while it handles one event.
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/asiarch.capnp.h"

namespace asiarch::msg {

template <typename Reader>
std::string canonical_bytes(Reader reader) {
  kj::Array<capnp::word> words = capnp::canonicalize(reader);
  return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * sizeof(capnp::word));
}

// Reads canonical bytes. The bytes are copied into word-aligned memory first, because a
// std::string's buffer need not be aligned. Reading a malformed message throws kj::Exception.
// `options` bound how much reading may follow pointers (capnp's traversal limit).
template <typename T>
class CanonicalView {
 public:
  explicit CanonicalView(std::string_view bytes, capnp::ReaderOptions options = {})
      : words_(kj::heapArray<capnp::word>((bytes.size() + sizeof(capnp::word) - 1) / sizeof(capnp::word))),
        segment_(words_.asPtr()),
        reader_(kj::arrayPtr(&segment_, 1), options) {
    std::memset(words_.begin(), 0, words_.size() * sizeof(capnp::word));
    std::memcpy(words_.begin(), bytes.data(), bytes.size());
  }
  typename T::Reader root() { return reader_.getRoot<T>(); }

 private:
  kj::Array<capnp::word> words_;
  kj::ArrayPtr<const capnp::word> segment_;
  capnp::SegmentArrayMessageReader reader_;
};

// The schema's name of an enumerant ("verify", "crash", "numerical"), or "unknown(N)" for a value
// the schema does not have (bytes from a damaged or newer log).
template <typename Enum>
std::string enum_name(Enum value) {
  for (auto enumerant : capnp::Schema::from<Enum>().getEnumerants()) {
    if (enumerant.getOrdinal() == static_cast<uint16_t>(value)) return enumerant.getProto().getName();
  }
  return "unknown(" + std::to_string(static_cast<int>(value)) + ")";
}

// The kind of an event: its payload's union tag, as written in the schema ("trainResult").
std::string kind_name(Payload::Which which);
// A readable multi-line text of an event's canonical bytes (capnp's pretty printer), or a note
// that the bytes do not decode: for diffs of bytes of unknown health.
std::string pretty_event_bytes(std::string_view canonical);

// Collects the messages an actor sends while handling one event; finish() gives the canonical
// bytes of the `Outbox`.
class OutboxWriter {
 public:
  // A payload to fill in, delivered to `to` after `delay_ns` of virtual time.
  Payload::Builder send(std::string to, uint64_t delay_ns = 0);
  size_t size() const { return pending_.size(); }
  std::string finish();

 private:
  struct Pending {
    uint64_t delay_ns;
    std::string to;
    capnp::Orphan<Payload> payload;
  };
  capnp::MallocMessageBuilder message_;
  std::vector<Pending> pending_;
};

}  // namespace asiarch::msg

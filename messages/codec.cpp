#include "messages/codec.h"

#include <capnp/pretty-print.h>
#include <capnp/schema.h>
#include <kj/exception.h>

namespace asiarch::msg {

std::string kind_name(Payload::Which which) {
  auto fields = capnp::Schema::from<Payload>().getUnionFields();
  for (auto field : fields) {
    if (field.getProto().getDiscriminantValue() == static_cast<uint16_t>(which)) {
      return field.getProto().getName();
    }
  }
  return "unknown(" + std::to_string(static_cast<int>(which)) + ")";
}

std::string pretty_event_bytes(std::string_view canonical) {
  try {
    // A canonical message holds each object once, so printing it follows no more words than it
    // has. The default limit (64 MiB) would let a few damaged bytes describe millions of list
    // elements of size zero, and printing them takes minutes (found by fuzz/fuzz_event).
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 2 * (canonical.size() / sizeof(capnp::word)) + 64;
    CanonicalView<Event> view(canonical, options);
    return capnp::prettyPrint(view.root()).flatten().cStr();
  } catch (const kj::Exception& e) {
    return "(" + std::to_string(canonical.size()) + " bytes that do not decode as an Event: " +
           std::string(e.getDescription().cStr()) + ")";
  }
}

Payload::Builder OutboxWriter::send(std::string to, uint64_t delay_ns) {
  auto orphan = message_.getOrphanage().newOrphan<Payload>();
  auto builder = orphan.get();
  pending_.push_back(Pending{delay_ns, std::move(to), std::move(orphan)});
  return builder;
}

std::string OutboxWriter::finish() {
  auto outbox = message_.initRoot<Outbox>();
  auto list = outbox.initMessages(static_cast<unsigned>(pending_.size()));
  for (unsigned i = 0; i < pending_.size(); ++i) {
    list[i].setDelayNs(pending_[i].delay_ns);
    list[i].setTo(pending_[i].to);
    list[i].adoptPayload(std::move(pending_[i].payload));
  }
  pending_.clear();
  return canonical_bytes(outbox.asReader());
}

}  // namespace asiarch::msg

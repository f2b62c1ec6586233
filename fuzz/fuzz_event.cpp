// libFuzzer target: the event decoder (messages/codec.h), as `asiarch replay`, `check` and
// `inspect` use it on bytes read from a run store that may be damaged or foreign. Any bytes
// either decode as an Event, read in full, or throw kj::Exception; the readable form never
// throws; what decodes canonicalises to bytes that decode to the same canonical bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "messages/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace asiarch::msg;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  pretty_event_bytes(bytes);
  std::string canonical;
  try {
    CanonicalView<Event> view(bytes);
    auto event = view.root();
    event.totalSize();
    kind_name(event.getPayload().which());
    canonical = canonical_bytes(event);
  } catch (const kj::Exception&) {
    return 0;
  }
  // capnp may charge the canonical form more of its traversal limit than the original: a list
  // whose elements canonicalise to zero size is charged per element (found by this target). The
  // limit guards resources, not correctness, so the re-read gets a larger one.
  capnp::ReaderOptions generous;
  generous.traversalLimitInWords *= 4;
  CanonicalView<Event> again(canonical, generous);
  if (canonical_bytes(again.root()) != canonical) {
    std::fprintf(stderr, "canonical bytes do not decode to themselves\n");
    std::abort();
  }
  return 0;
}

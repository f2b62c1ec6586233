#pragma once
// The coordinator's queue: events ordered by (virtual time, sequence number). The sequence
// number is unique, so the order is total and independent of how events were produced.
#include <cstdint>
#include <algorithm>
#include <string>
#include <vector>

namespace asiarch {

struct QueuedEvent {
  uint64_t vtime_ns;
  uint64_t seq;
  std::string to;
  std::string bytes;  // canonical Event
};

class EventQueue {
 public:
  void push(QueuedEvent event) {
    heap_.push_back(std::move(event));
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }
  bool empty() const { return heap_.empty(); }
  // The earliest event, moved out of the queue.
  QueuedEvent pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    QueuedEvent earliest = std::move(heap_.back());
    heap_.pop_back();
    return earliest;
  }

 private:
  struct Later {
    bool operator()(const QueuedEvent& a, const QueuedEvent& b) const {
      return a.vtime_ns != b.vtime_ns ? a.vtime_ns > b.vtime_ns : a.seq > b.seq;
    }
  };
  std::vector<QueuedEvent> heap_;  // a min-heap on (vtime, seq)
};

}  // namespace asiarch

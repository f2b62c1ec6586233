#pragma once
// The coordinator's queue: events ordered by (virtual time, sequence number). The sequence
// number is unique, so the order is total and independent of how events were produced.
#include <cstdint>
#include <queue>
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
  void push(QueuedEvent event) { heap_.push(std::move(event)); }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  QueuedEvent pop() {
    QueuedEvent top = heap_.top();
    heap_.pop();
    return top;
  }

 private:
  struct Later {
    bool operator()(const QueuedEvent& a, const QueuedEvent& b) const {
      return a.vtime_ns != b.vtime_ns ? a.vtime_ns > b.vtime_ns : a.seq > b.seq;
    }
  };
  std::priority_queue<QueuedEvent, std::vector<QueuedEvent>, Later> heap_;
};

}  // namespace asiarch

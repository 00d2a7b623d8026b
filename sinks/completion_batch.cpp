#include "sinks/completion_batch.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace wharf::sinks {

void completion_batch::add(const boost::asio::any_io_executor& ex, completion done, delivery_result result) {
  // Look back a few groups only: connections interleave, and a linear scan
  // over thousands of groups would cost more than an extra post.
  constexpr std::size_t look_back = 8;
  const std::size_t n = groups_.size();
  for (std::size_t i = 0; i < std::min(n, look_back); ++i) {
    auto& g = groups_[n - 1 - i];
    if (g.ex == ex) {
      // Appending to an earlier group would reorder relative to a later group
      // only across different executors, which is fine: order matters per
      // executor.
      g.items.push_back(item{std::move(done), std::move(result)});
      return;
    }
  }
  groups_.push_back(group{ex, {}});
  groups_.back().items.push_back(item{std::move(done), std::move(result)});
}

void completion_batch::post_all() {
  for (auto& g : groups_) {
    boost::asio::post(g.ex, [items = std::move(g.items)]() mutable {
      for (auto& it : items) it.done(std::move(it.result));
    });
  }
  groups_.clear();
}

}  // namespace wharf::sinks

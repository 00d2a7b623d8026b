#include "sinks/null_sink.h"

#include "sinks/sink_metrics.h"

#include <boost/asio/post.hpp>

#include <atomic>

namespace wharf::sinks {

namespace {

class null_sink final : public sink {
 public:
  explicit null_sink(prometheus::Registry& registry) : metrics_(registry, "null") {}

  submit_status submit(record rec, boost::asio::any_io_executor ex, completion done) override {
    if (closed_.load(std::memory_order_relaxed)) return submit_status::closed;
    (void)rec;
    metrics_.submitted();
    metrics_.completed(delivery_result{delivery_status::stored, {}, delivery_result::cause::none},
                       std::chrono::steady_clock::duration::zero());
    boost::asio::post(ex, [done = std::move(done)]() mutable {
      done(delivery_result{delivery_status::stored, {}, delivery_result::cause::none});
    });
    return submit_status::accepted;
  }

  submit_status try_submit(record& rec, boost::asio::any_io_executor ex, completion done) override {
    auto st = submit(record{}, std::move(ex), std::move(done));
    if (st == submit_status::accepted) rec = record{};
    return st;
  }

  void async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) override {
    boost::asio::post(ex, std::move(ready));
  }

  sink_health health() const override { return sink_health{}; }

  void shutdown(std::chrono::milliseconds) override { closed_.store(true); }

  std::string_view name() const noexcept override { return "null"; }

 private:
  sink_metrics metrics_;
  std::atomic<bool> closed_{false};
};

}  // namespace

std::unique_ptr<sink> make_null_sink(prometheus::Registry& registry) { return std::make_unique<null_sink>(registry); }

}  // namespace wharf::sinks

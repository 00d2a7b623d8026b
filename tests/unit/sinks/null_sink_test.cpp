#include "sinks/null_sink.h"
#include "tests/unit/sinks/test_executor.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

namespace wharf::sinks {
namespace {

TEST(NullSink, ReportsStoredOnTheSubmittingExecutorAfterSubmitReturns) {
  prometheus::Registry registry;
  auto s = make_null_sink(registry);
  boost::asio::io_context io;
  std::optional<delivery_result> got;
  ASSERT_EQ(s->submit(test::make_record("t", "k", "v"), io.get_executor(), [&](delivery_result r) { got = r; }),
            submit_status::accepted);
  EXPECT_FALSE(got.has_value());
  io.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->stored());
  EXPECT_EQ(s->name(), "null");
}

TEST(NullSink, CapacityIsAlwaysThere) {
  prometheus::Registry registry;
  auto s = make_null_sink(registry);
  boost::asio::io_context io;
  bool ready = false;
  s->async_wait_capacity(io.get_executor(), [&] { ready = true; });
  EXPECT_FALSE(ready);
  io.run();
  EXPECT_TRUE(ready);
}

TEST(NullSink, RefusesAfterShutdown) {
  prometheus::Registry registry;
  auto s = make_null_sink(registry);
  s->shutdown(std::chrono::milliseconds(0));
  boost::asio::io_context io;
  EXPECT_EQ(s->submit(test::make_record("t", "k", "v"), io.get_executor(), [](delivery_result) {}),
            submit_status::closed);
}

TEST(NullSink, CountsSubmittedAndStored) {
  prometheus::Registry registry;
  auto s = make_null_sink(registry);
  boost::asio::io_context io;
  for (int i = 0; i < 3; ++i) s->submit(test::make_record("t", "k", "v"), io.get_executor(), [](delivery_result) {});
  io.run();
  double submitted = 0, stored = 0;
  for (const auto& fam : registry.Collect()) {
    if (fam.name == "wharf_sink_records_submitted_total") submitted = fam.metric.at(0).counter.value;
    if (fam.name == "wharf_sink_records_stored_total") stored = fam.metric.at(0).counter.value;
  }
  EXPECT_EQ(submitted, 3);
  EXPECT_EQ(stored, 3);
}

}  // namespace
}  // namespace wharf::sinks

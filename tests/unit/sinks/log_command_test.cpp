#include "sinks/local_log/local_log_sink.h"
#include "sinks/local_log/log_command.h"
#include "tests/unit/sinks/test_executor.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <filesystem>

namespace wharf::sinks::local_log {
namespace {

namespace fs = std::filesystem;

class LogCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("wharf-log-command-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    prometheus::Registry registry;
    local_log_options o;
    o.dir = dir_;
    auto log = local_log_sink::open(o, registry);
    ASSERT_TRUE(log.has_value());
    boost::asio::io_context io;
    std::atomic<int> done{0};
    for (int i = 0; i < 3; ++i)
      (*log)->submit(
          test::make_record("mqtt.ingest", "dev-" + std::to_string(i), std::string("v\x01", 2) + std::to_string(i),
                            {{"ce_id", "id-" + std::to_string(i)}}),
          io.get_executor(), [&](delivery_result) { ++done; });
    ASSERT_TRUE(test::run_until(io, [&] { return done.load() == 3; }));
  }
  void TearDown() override { fs::remove_all(dir_); }

  int run(std::vector<std::string> args, std::string& out) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    const int rc = run_log_command(static_cast<int>(argv.size()), argv.data());
    out = ::testing::internal::GetCapturedStdout();
    return rc;
  }

  std::string dir_;
};

TEST_F(LogCommand, CatPrintsEveryRecordWithHeadersAndEscapedValue) {
  std::string out;
  ASSERT_EQ(run({"log", "cat", dir_}, out), 0);
  EXPECT_NE(out.find("offset=0 "), std::string::npos);
  EXPECT_NE(out.find("topic=mqtt.ingest key=dev-2 bytes=3"), std::string::npos);
  EXPECT_NE(out.find("  ce_id: id-1\n"), std::string::npos);
  EXPECT_NE(out.find("  v\\x012\n"), std::string::npos);
}

TEST_F(LogCommand, TailPrintsOnlyTheLastRecords) {
  std::string out;
  ASSERT_EQ(run({"log", "tail", dir_, "-n", "1"}, out), 0);
  EXPECT_EQ(out.find("offset=1 "), std::string::npos);
  EXPECT_NE(out.find("offset=2 "), std::string::npos);
}

TEST_F(LogCommand, MissingDirectoryIsAnError) {
  std::string out;
  EXPECT_NE(run({"log", "cat", dir_ + "/nope"}, out), 0);
}

TEST_F(LogCommand, UnknownVerbIsAUsageError) {
  std::string out;
  EXPECT_EQ(run({"log", "frobnicate", dir_}, out), 2);
}

}  // namespace
}  // namespace wharf::sinks::local_log

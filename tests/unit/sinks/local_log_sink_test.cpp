#include "sinks/local_log/local_log_sink.h"
#include "sinks/local_log/log_format.h"
#include "sinks/local_log/log_reader.h"
#include "tests/unit/sinks/test_executor.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace wharf::sinks::local_log {
namespace {

namespace fs = std::filesystem;
using test::make_record;
using test::run_until;

class LocalLogSink : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wharf-local-log-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  local_log_options options() {
    local_log_options o;
    o.dir = dir_.string();
    return o;
  }

  std::unique_ptr<local_log_sink> open(local_log_options o) {
    auto r = local_log_sink::open(std::move(o), registry_);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error());
    return r ? std::move(*r) : nullptr;
  }

  // Submits `n` records and waits for all completions; returns how many were stored.
  int write(local_log_sink& log, int n, const std::string& prefix = "v", std::size_t value_size = 0) {
    std::atomic<int> stored{0}, done{0};
    for (int i = 0; i < n; ++i) {
      std::string value = prefix + std::to_string(i);
      if (value_size > value.size()) value.resize(value_size, 'x');
      auto rec = make_record("t", "k" + std::to_string(i % 3), value, {{"seq", std::to_string(i)}});
      while (log.submit(rec, io_.get_executor(), [&](delivery_result r) {
        if (r.stored()) ++stored;
        ++done;
      }) == submit_status::queue_full) {
        run_until(
            io_, [] { return false; }, std::chrono::milliseconds(1));
      }
    }
    EXPECT_TRUE(run_until(io_, [&] { return done.load() == n; }));
    return stored.load();
  }

  std::vector<log_record> read_all(std::uint64_t from = 0) {
    log_reader reader(dir_.string());
    EXPECT_TRUE(reader.seek(from));
    std::vector<log_record> out;
    log_record r;
    while (reader.next(r) == log_reader::read_result::record) out.push_back(r);
    return out;
  }

  std::string last_segment_path() { return list_segments(dir_.string()).back().path; }

  double histogram_value(const std::string& name, bool want_sum) {
    for (const auto& fam : registry_.Collect()) {
      if (fam.name != name) continue;
      for (const auto& m : fam.metric)
        return want_sum ? m.histogram.sample_sum : static_cast<double>(m.histogram.sample_count);
    }
    return -1;
  }

  fs::path dir_;
  prometheus::Registry registry_;
  boost::asio::io_context io_;
};

TEST_F(LocalLogSink, ReportsEveryRecordStoredAndReaderReadsThemBackInOrder) {
  auto log = open(options());
  ASSERT_TRUE(log);
  EXPECT_EQ(write(*log, 100), 100);
  EXPECT_EQ(log->end_offset(), 100u);
  const auto records = read_all();
  ASSERT_EQ(records.size(), 100u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].offset, i);
    EXPECT_EQ(records[i].rec.value, "v" + std::to_string(i));
    ASSERT_EQ(records[i].rec.headers.size(), 1u);
    EXPECT_EQ(records[i].rec.headers[0].value, std::to_string(i));
    EXPECT_GT(records[i].timestamp_ms, 0);
  }
}

TEST_F(LocalLogSink, CompletionRunsOnTheSubmittingExecutorNotInsideSubmit) {
  auto log = open(options());
  ASSERT_TRUE(log);
  std::atomic<bool> called{false};
  std::thread::id ran_on;
  ASSERT_EQ(log->submit(make_record("t", "k", "v"), io_.get_executor(),
                        [&](delivery_result) {
                          ran_on = std::this_thread::get_id();
                          called = true;
                        }),
            submit_status::accepted);
  EXPECT_FALSE(called.load());
  ASSERT_TRUE(run_until(io_, [&] { return called.load(); }));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_F(LocalLogSink, ReaderSeeksToAnyOffset) {
  auto log = open(options());
  ASSERT_TRUE(log);
  write(*log, 20);
  const auto records = read_all(13);
  ASSERT_EQ(records.size(), 7u);
  EXPECT_EQ(records.front().offset, 13u);
  EXPECT_EQ(records.front().rec.value, "v13");
}

TEST_F(LocalLogSink, ReopenContinuesAfterTheLastOffset) {
  {
    auto log = open(options());
    ASSERT_TRUE(log);
    write(*log, 10);
  }
  auto log = open(options());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->end_offset(), 10u);
  write(*log, 5, "w");
  const auto records = read_all();
  ASSERT_EQ(records.size(), 15u);
  EXPECT_EQ(records[10].rec.value, "w0");
  EXPECT_EQ(records[14].offset, 14u);
}

TEST_F(LocalLogSink, OpenDropsAShortFrameAtTheEndOfTheLastSegment) {
  {
    auto log = open(options());
    ASSERT_TRUE(log);
    write(*log, 10);
  }
  std::string frame;
  append_frame(frame, make_record("t", "k", "torn"), 1);
  const auto size_before = fs::file_size(last_segment_path());
  {
    std::ofstream out(last_segment_path(), std::ios::binary | std::ios::app);
    out.write(frame.data(), static_cast<std::streamsize>(frame.size() / 2));
  }
  auto log = open(options());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovered_torn_bytes(), frame.size() / 2);
  EXPECT_EQ(fs::file_size(last_segment_path()), size_before);
  EXPECT_EQ(log->end_offset(), 10u);
  write(*log, 1, "after");
  const auto records = read_all();
  ASSERT_EQ(records.size(), 11u);
  EXPECT_EQ(records[10].rec.value, "after0");
}

TEST_F(LocalLogSink, OpenDropsAFrameWithABadCrcAtTheEnd) {
  {
    auto log = open(options());
    ASSERT_TRUE(log);
    write(*log, 3);
  }
  std::string frame;
  append_frame(frame, make_record("t", "k", "bad crc"), 1);
  frame[frame.size() - 1] ^= 0x01;
  {
    std::ofstream out(last_segment_path(), std::ios::binary | std::ios::app);
    out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  }
  auto log = open(options());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovered_torn_bytes(), frame.size());
  EXPECT_EQ(read_all().size(), 3u);
}

TEST_F(LocalLogSink, OpenLeavesOlderSegmentsAloneEvenWhenCorrupt) {
  auto o = options();
  o.segment_bytes = 1;  // every group commit starts a new segment
  {
    auto log = open(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < 3; ++i) write(*log, 1);
  }
  auto segments = list_segments(dir_.string());
  ASSERT_GE(segments.size(), 3u);
  const auto first = segments.front();
  {
    std::fstream f(first.path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(first.size_bytes - 1));
    f.put('\x7f');
  }
  auto log = open(o);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovered_torn_bytes(), 0u);
  EXPECT_EQ(fs::file_size(first.path), first.size_bytes);
  log_reader reader(dir_.string());
  ASSERT_TRUE(reader.seek(0));
  log_record r;
  EXPECT_EQ(reader.next(r), log_reader::read_result::corrupt);
}

TEST_F(LocalLogSink, RollsToANewSegmentPastSegmentBytes) {
  auto o = options();
  o.segment_bytes = 300;
  auto log = open(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 20; ++i) write(*log, 1, "r" + std::to_string(i) + "-", 100);
  const auto segments = list_segments(dir_.string());
  EXPECT_GT(segments.size(), 3u);
  const auto records = read_all();
  ASSERT_EQ(records.size(), 20u);
  for (std::size_t i = 0; i < 20; ++i) EXPECT_EQ(records[i].offset, i);
}

TEST_F(LocalLogSink, RetentionBySizeDeletesTheOldestClosedSegments) {
  auto o = options();
  o.segment_bytes = 300;
  o.retention_bytes = 1000;
  auto log = open(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 40; ++i) write(*log, 1, "r", 100);
  log->shutdown(std::chrono::seconds(5));  // retention runs on the writer thread after a commit
  const auto segments = list_segments(dir_.string());
  std::uint64_t total = 0;
  for (const auto& s : segments) total += s.size_bytes;
  EXPECT_LE(total, 1000u + 300u + 200u);  // the limit, plus the active segment and one group
  EXPECT_GT(segments.front().base_offset, 0u);
  const auto records = read_all(0);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.front().offset, segments.front().base_offset);
  EXPECT_EQ(records.back().offset, 39u);
}

TEST_F(LocalLogSink, RetentionByAgeDeletesClosedSegmentsButNotTheActiveOne) {
  auto o = options();
  o.segment_bytes = 1;
  o.retention_age = std::chrono::milliseconds(0);
  auto log = open(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 5; ++i) write(*log, 1);
  const auto segments = list_segments(dir_.string());
  ASSERT_LE(segments.size(), 2u);
  EXPECT_EQ(read_all().back().offset, 4u);
}

TEST_F(LocalLogSink, RetentionKeepsSegmentsFromTheProtectedOffset) {
  auto o = options();
  o.segment_bytes = 1;
  o.retention_age = std::chrono::milliseconds(0);
  auto log = open(o);
  ASSERT_TRUE(log);
  log->protect_from(2);
  for (int i = 0; i < 6; ++i) write(*log, 1);
  const auto records = read_all();
  ASSERT_FALSE(records.empty());
  EXPECT_LE(records.front().offset, 2u);
  EXPECT_EQ(records.back().offset, 5u);
}

TEST_F(LocalLogSink, ConcurrentWritersShareFsyncs) {
  auto log = open(options());
  ASSERT_TRUE(log);
  constexpr int threads = 4, per_thread = 500;
  std::atomic<int> done{0}, stored{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto rec = make_record("t", "k" + std::to_string(t), std::string(200, 'x'));
        while (log->submit(rec, io_.get_executor(), [&](delivery_result r) {
          if (r.stored()) ++stored;
          ++done;
        }) == submit_status::queue_full) {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(run_until(io_, [&] { return done.load() == threads * per_thread; }));
  EXPECT_EQ(stored.load(), threads * per_thread);
  const double fsyncs = histogram_value("wharf_local_log_records_per_fsync", false);
  const double records = histogram_value("wharf_local_log_records_per_fsync", true);
  EXPECT_EQ(records, threads * per_thread);
  EXPECT_LT(fsyncs, records);
  std::printf("[ report ] %d records in %.0f fsyncs: %.1f records per fsync\n", threads * per_thread, fsyncs,
              records / fsyncs);
}

TEST_F(LocalLogSink, FullQueueRefusesWithQueueFullAndSignalsCapacityLater) {
  auto o = options();
  o.queue_max_bytes = 600;
  auto log = open(o);
  ASSERT_TRUE(log);
  int accepted = 0;
  bool saw_full = false;
  std::atomic<int> done{0};
  for (int i = 0; i < 100000 && !saw_full; ++i) {
    const auto st =
        log->submit(make_record("t", "k", std::string(500, 'x')), io_.get_executor(), [&](delivery_result) { ++done; });
    if (st == submit_status::queue_full) saw_full = true;
    if (st == submit_status::accepted) ++accepted;
  }
  ASSERT_TRUE(saw_full);
  std::atomic<bool> ready{false};
  log->async_wait_capacity(io_.get_executor(), [&] { ready = true; });
  EXPECT_TRUE(run_until(io_, [&] { return ready.load() && done.load() == accepted; }));
}

TEST_F(LocalLogSink, TrySubmitLeavesTheRecordWithTheCallerWhenRefused) {
  auto o = options();
  o.queue_max_bytes = 600;
  auto log = open(o);
  ASSERT_TRUE(log);
  std::atomic<int> done{0};
  for (int i = 0; i < 100000; ++i) {
    auto rec = make_record("t", "k", std::string(500, 'x'));
    const auto st = log->try_submit(rec, io_.get_executor(), [&](delivery_result) { ++done; });
    if (st == submit_status::accepted) continue;
    ASSERT_EQ(st, submit_status::queue_full);
    EXPECT_EQ(rec.value, std::string(500, 'x')) << "a refused record must stay with the caller";
    EXPECT_EQ(rec.topic, "t");
    break;
  }
  log->shutdown(std::chrono::seconds(5));
  auto rec = make_record("t", "k", "kept");
  EXPECT_EQ(log->try_submit(rec, io_.get_executor(), [](delivery_result) {}), submit_status::closed);
  EXPECT_EQ(rec.value, "kept");
}

TEST_F(LocalLogSink, SubmitAfterShutdownIsClosed) {
  auto log = open(options());
  ASSERT_TRUE(log);
  write(*log, 2);
  log->shutdown(std::chrono::seconds(5));
  EXPECT_EQ(log->submit(make_record("t", "k", "v"), io_.get_executor(), [](delivery_result) {}), submit_status::closed);
}

TEST_F(LocalLogSink, OpenFailsWithAMessageNamingTheDirectory) {
  auto o = options();
  o.dir = "/proc/wharf-cannot-create-this";
  auto r = local_log_sink::open(o, registry_);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("/proc/wharf-cannot-create-this"), std::string::npos);
}

}  // namespace
}  // namespace wharf::sinks::local_log

// SIGKILL a process that writes to the local log, mid-stream, several times:
// every record it was told was stored is readable afterwards, and the log
// opens cleanly (a torn tail, if the kill left one, is gone).
#include "sinks/local_log/local_log_sink.h"
#include "sinks/local_log/log_reader.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace wharf::sinks::local_log {
namespace {

namespace fs = std::filesystem;

// Runs the writer until it reported at least `want` stored records, then
// SIGKILLs it. Returns every sequence number it reported.
std::vector<unsigned long long> run_and_kill(const std::string& dir, unsigned long long first, std::size_t want) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string first_s = std::to_string(first);
    ::execl(WHARF_CRASH_WRITER, WHARF_CRASH_WRITER, dir.c_str(), first_s.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::vector<unsigned long long> seqs;
  std::string pending;
  char buf[4096];
  while (seqs.size() < want) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      seqs.push_back(std::stoull(pending.substr(0, pos)));
      pending.erase(0, pos + 1);
    }
  }
  ::kill(pid, SIGKILL);
  // Lines already in the pipe were reported before the kill: count them too.
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
  }
  std::size_t pos;
  while ((pos = pending.find('\n')) != std::string::npos) {
    seqs.push_back(std::stoull(pending.substr(0, pos)));
    pending.erase(0, pos + 1);
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself (status " << status << ")";
  return seqs;
}

TEST(LocalLogCrash, EveryRecordReportedStoredSurvivesSigkillAndTheLogReopensClean) {
  const auto dir = (fs::temp_directory_path() / ("wharf-crash-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  std::set<unsigned long long> acknowledged;
  unsigned long long next_first = 0;
  for (int round = 0; round < 3; ++round) {
    const auto seqs = run_and_kill(dir, next_first, 3000);
    ASSERT_GE(seqs.size(), 3000u) << "round " << round;
    acknowledged.insert(seqs.begin(), seqs.end());
    next_first += 1000000;

    // A SIGKILL leaves whole write() calls in the page cache; a power cut can
    // leave half a group. Simulate that once: half a frame at the end.
    std::uint64_t torn = 0;
    if (round == 1) {
      std::string frame;
      record junk;
      junk.topic = "crash";
      junk.value = std::string(300, 'j');
      append_frame(frame, junk, 1);
      torn = frame.size() / 2;
      std::ofstream out(list_segments(dir).back().path, std::ios::binary | std::ios::app);
      out.write(frame.data(), static_cast<std::streamsize>(torn));
    }
    // Reopen as the next start-up would: recovery, then read everything.
    prometheus::Registry registry;
    local_log_options o;
    o.dir = dir;
    auto log = local_log_sink::open(o, registry);
    ASSERT_TRUE(log.has_value()) << log.error();
    std::printf("[ report ] round %d: %zu acknowledged, torn tail dropped: %llu bytes\n", round, seqs.size(),
                static_cast<unsigned long long>((*log)->recovered_torn_bytes()));
    if (round == 1) {
      EXPECT_EQ((*log)->recovered_torn_bytes(), torn);
    }
    const auto end = (*log)->end_offset();
    (*log)->shutdown(std::chrono::seconds(5));

    log_reader reader(dir);
    ASSERT_TRUE(reader.seek(0));
    std::set<unsigned long long> found;
    log_record r;
    log_reader::read_result st;
    while ((st = reader.next(r)) == log_reader::read_result::record) {
      ASSERT_EQ(r.rec.headers.size(), 1u);
      found.insert(std::stoull(r.rec.headers[0].value));
      EXPECT_EQ(r.rec.value.substr(0, 4), "seq-");
    }
    EXPECT_EQ(st, log_reader::read_result::end) << reader.error();
    EXPECT_EQ(reader.position(), end);
    std::size_t missing = 0;
    for (auto s : acknowledged) missing += found.count(s) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "acknowledged records missing after round " << round;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wharf::sinks::local_log

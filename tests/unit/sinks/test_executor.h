// Helpers for sink tests: an io_context to receive completions and a way to
// wait for them without timing assumptions beyond a generous deadline.
#pragma once

#include "sinks/sink.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace wharf::sinks::test {

// Runs `io` until `done()` is true or `limit` passed; returns done().
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return done();
}

inline record make_record(std::string topic, std::string key, std::string value, std::vector<header> headers = {}) {
  record r;
  r.topic = std::move(topic);
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  return r;
}

}  // namespace wharf::sinks::test

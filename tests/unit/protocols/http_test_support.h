// Shared by the http_*_test.cpp files: building requests and configs.
#pragma once

#include "protocols/http/request_handler.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace wharf::http::test {

inline http_request post(std::string target, std::string body, std::string content_type = "application/json",
                         std::vector<field> extra = {}) {
  http_request r;
  r.method = "POST";
  r.target = std::move(target);
  r.headers.push_back({"Content-Length", std::to_string(body.size())});
  if (!content_type.empty()) r.headers.push_back({"Content-Type", content_type});
  for (auto& f : extra) r.headers.push_back(std::move(f));
  r.body = std::move(body);
  r.peer_address = "10.0.0.7";
  return r;
}

inline std::string temp_file(const std::string& name, const std::string& content) {
  static const std::string dir = [] {
    std::random_device rd;
    auto d = std::filesystem::temp_directory_path() / ("wharf-http-test-" + std::to_string(rd()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

inline boost::json::value body_json(const http_response& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "response body is not JSON: " << r.body;
  return v;
}

inline std::string header_value(const std::vector<field>& h, std::string_view name) {
  return std::string(find_header(h, name).value_or(""));
}

inline std::string record_header(const sinks::record& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return {};
}

}  // namespace wharf::http::test

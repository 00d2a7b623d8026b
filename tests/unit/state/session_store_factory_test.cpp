#include "config/config.h"
#include "state/session_store.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <stdexcept>

namespace wharf::state {
namespace {

TEST(SessionStoreFactory, EmptyUrlGivesTheInMemoryStore) {
  boost::asio::io_context io;
  prometheus::Registry registry;
  config::redis_config cfg;
  auto store = make_session_store(cfg, "node-7", io, registry);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->node_id(), "node-7");
  std::optional<boost::system::result<connect_result>> got;
  connect_params p;
  store->connect("dev", p, io.get_executor(), [&](boost::system::result<connect_result> r) { got = std::move(r); });
  io.run();
  ASSERT_TRUE(got && *got);
  EXPECT_FALSE((*got)->session_present);
}

TEST(SessionStoreFactory, MalformedUrlIsAStartupErrorNamingTheKey) {
  boost::asio::io_context io;
  prometheus::Registry registry;
  config::redis_config cfg;
  cfg.url = "sentinel://127.0.0.1:26379";
  try {
    (void)make_session_store(cfg, "n", io, registry);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("redis.url"), std::string::npos) << e.what();
  }
}

TEST(SessionStoreErrors, MessagesSayWhatHappened) {
  EXPECT_EQ(make_error_code(store_error::fenced).message(),
            "stale session epoch: the session belongs to a newer connection");
  EXPECT_STREQ(make_error_code(store_error::timeout).category().name(), "wharf.state");
  boost::system::error_code ec = store_error::not_replicated;
  EXPECT_EQ(ec, make_error_code(store_error::not_replicated));
}

}  // namespace
}  // namespace wharf::state

#include "protocols/mqtt/topic.h"

#include <gtest/gtest.h>

namespace wharf::mqtt {
namespace {

TEST(MqttTopic, MatchesExactAndSingleLevelWildcard) {
  EXPECT_TRUE(matches("a/b/c", "a/b/c"));
  EXPECT_FALSE(matches("a/b/c", "a/b"));
  EXPECT_TRUE(matches("a/+/c", "a/x/c"));
  EXPECT_TRUE(matches("a/+", "a/"));
  EXPECT_FALSE(matches("a/+", "a"));
  EXPECT_FALSE(matches("a/+", "a/b/c"));
  EXPECT_TRUE(matches("+/+", "/x"));
  EXPECT_TRUE(matches("+", "x"));
  EXPECT_FALSE(matches("+", "x/y"));
}

TEST(MqttTopic, MultiLevelWildcardMatchesParentAndChildren) {
  EXPECT_TRUE(matches("#", "a/b/c"));
  EXPECT_TRUE(matches("a/#", "a"));
  EXPECT_TRUE(matches("a/#", "a/b/c"));
  EXPECT_FALSE(matches("a/#", "b/a"));
  EXPECT_TRUE(matches("a/+/#", "a/b"));
}

TEST(MqttTopic, WildcardsAtFirstLevelDoNotMatchDollarTopics) {
  EXPECT_FALSE(matches("#", "$SYS/x"));
  EXPECT_FALSE(matches("+/x", "$SYS/x"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS/x"));
  EXPECT_TRUE(matches("$SYS/+", "$SYS/x"));
}

TEST(MqttTopic, CountsLevels) {
  EXPECT_EQ(topic_level_count("a"), 1u);
  EXPECT_EQ(topic_level_count("a/b/c"), 3u);
  EXPECT_EQ(topic_level_count("/"), 2u);
}

TEST(MqttTopic, ValidatesTopicNames) {
  EXPECT_FALSE(validate_topic_name("a/b"));
  EXPECT_EQ(validate_topic_name(""), errc::topic_name_invalid);
  EXPECT_EQ(validate_topic_name("a/+"), errc::topic_name_invalid);
  EXPECT_EQ(validate_topic_name("a#"), errc::topic_name_invalid);
  EXPECT_EQ(validate_topic_name("abcd", {3, 10}), errc::topic_name_invalid);
  EXPECT_EQ(validate_topic_name("a/b/c", {100, 2}), errc::topic_name_invalid);
  EXPECT_FALSE(validate_topic_name("a/b", {100, 2}));
}

TEST(MqttTopic, ValidatesTopicFilters) {
  EXPECT_FALSE(validate_topic_filter("a/+/c"));
  EXPECT_FALSE(validate_topic_filter("#"));
  EXPECT_FALSE(validate_topic_filter("a/#"));
  EXPECT_EQ(validate_topic_filter(""), errc::topic_filter_invalid);
  EXPECT_EQ(validate_topic_filter("a/#/c"), errc::topic_filter_invalid);
  EXPECT_EQ(validate_topic_filter("a#"), errc::topic_filter_invalid);
  EXPECT_EQ(validate_topic_filter("a/b+"), errc::topic_filter_invalid);
}

TEST(MqttTopic, ValidatesSharedSubscriptions) {
  EXPECT_TRUE(is_shared_subscription("$share/g/a/b"));
  EXPECT_FALSE(validate_topic_filter("$share/g/a/+"));
  EXPECT_EQ(validate_topic_filter("$share/g"), errc::topic_filter_invalid);
  EXPECT_EQ(validate_topic_filter("$share//a"), errc::topic_filter_invalid);
  EXPECT_EQ(validate_topic_filter("$share/g+/a"), errc::topic_filter_invalid);
}

TEST(MqttTopic, ValidatesMqttUtf8) {
  EXPECT_TRUE(is_valid_mqtt_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_mqtt_utf8(std::string_view("a\0b", 3)));
  EXPECT_FALSE(is_valid_mqtt_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_mqtt_utf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(is_valid_mqtt_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_mqtt_utf8("\xE2\x82"));          // truncated
}

}  // namespace
}  // namespace wharf::mqtt

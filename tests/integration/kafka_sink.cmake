# The Kafka sink against scripts/stack's brokers (no wharf binary needed).
# They share the brokers with the fault tests, hence the lock.
add_executable(integration_kafka_sink kafka_sink_test.cpp local_log_forwarder_kafka_test.cpp)
target_link_libraries(integration_kafka_sink PRIVATE wharf_sinks_kafka PkgConfig::RDKAFKA GTest::gtest GTest::gtest_main)
target_compile_definitions(integration_kafka_sink PRIVATE WHARF_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
wharf_warnings(integration_kafka_sink)
gtest_discover_tests(integration_kafka_sink PROPERTIES LABELS integration RESOURCE_LOCK kafka DISCOVERY_TIMEOUT 60)

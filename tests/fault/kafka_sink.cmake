# Sink fault tests.
#
# fault_kafka_sink: brokers of `scripts/stack up --brokers 3` killed and
# stopped under load; restores them; holds the "kafka" lock and runs alone.
add_executable(fault_kafka_sink kafka_sink_fault_test.cpp)
target_link_libraries(fault_kafka_sink PRIVATE wharf_sinks_kafka PkgConfig::RDKAFKA GTest::gtest GTest::gtest_main)
target_compile_definitions(fault_kafka_sink PRIVATE WHARF_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
wharf_warnings(fault_kafka_sink)
gtest_discover_tests(fault_kafka_sink PROPERTIES LABELS fault RUN_SERIAL TRUE RESOURCE_LOCK kafka
                     TIMEOUT 400 DISCOVERY_TIMEOUT 60)

# fault_kafka_sink_mock: librdkafka's in-process mock cluster (fatal
# idempotence error, per-request errors); needs no services.
add_executable(fault_kafka_sink_mock kafka_sink_mock_test.cpp)
target_link_libraries(fault_kafka_sink_mock PRIVATE wharf_sinks_kafka PkgConfig::RDKAFKA GTest::gtest GTest::gtest_main)
wharf_warnings(fault_kafka_sink_mock)
gtest_discover_tests(fault_kafka_sink_mock PROPERTIES LABELS fault DISCOVERY_TIMEOUT 60)

# fault_local_log_crash: SIGKILL a local log writer mid-stream, reopen, check.
add_executable(local_log_crash_writer local_log_crash_writer.cpp)
target_link_libraries(local_log_crash_writer PRIVATE wharf_sinks spdlog::spdlog)
wharf_warnings(local_log_crash_writer)
add_executable(fault_local_log_crash local_log_crash_test.cpp)
target_link_libraries(fault_local_log_crash PRIVATE wharf_sinks GTest::gtest GTest::gtest_main)
target_compile_definitions(fault_local_log_crash PRIVATE WHARF_CRASH_WRITER="$<TARGET_FILE:local_log_crash_writer>")
add_dependencies(fault_local_log_crash local_log_crash_writer)
wharf_warnings(fault_local_log_crash)
gtest_discover_tests(fault_local_log_crash PROPERTIES LABELS fault DISCOVERY_TIMEOUT 60)

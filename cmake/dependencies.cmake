# Every dependency is a Debian package installed by scripts/bootstrap.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json url)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(HIREDIS_SSL IMPORTED_TARGET hiredis_ssl)
pkg_check_modules(LIBJWT IMPORTED_TARGET libjwt)
pkg_check_modules(ARGON2 IMPORTED_TARGET libargon2)
if(WHARF_TESTS)
  find_package(GTest REQUIRED)
endif()

# Asio, Beast and Asio SSL are compiled once, in wharf_asio, instead of in
# every translation unit that includes them.
add_library(wharf_asio_defs INTERFACE)
target_compile_definitions(wharf_asio_defs INTERFACE
  BOOST_ASIO_SEPARATE_COMPILATION
  BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_DATE_TIME)
target_link_libraries(wharf_asio_defs INTERFACE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
add_library(wharf_asio STATIC ${CMAKE_SOURCE_DIR}/cmake/asio_impl.cpp)
target_link_libraries(wharf_asio PUBLIC wharf_asio_defs)

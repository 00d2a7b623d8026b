#include "protocols/http/gzip_decoder.h"

#include <zlib.h>

#include <array>

namespace wharf::http {

inflate_result gunzip(std::string_view compressed, std::size_t max_output) {
  inflate_result out;
  z_stream zs{};
  // 16 + MAX_WBITS: gzip wrapper only (RFC 1952), as Content-Encoding: gzip says.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    out.message = "the gzip decoder could not start";
    return out;
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::array<char, 16384> chunk{};
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      out.status = inflate_status::corrupt;
      out.message = zs.msg != nullptr ? std::string("the gzip body is corrupt: ") + zs.msg
                                      : std::string("the gzip body is truncated or corrupt");
      out.data.clear();
      return out;
    }
    const std::size_t produced = chunk.size() - zs.avail_out;
    if (out.data.size() + produced > max_output) {
      inflateEnd(&zs);
      out.status = inflate_status::too_large;
      out.message = "the body decompresses to more than " + std::to_string(max_output) + " bytes";
      out.data.clear();
      return out;
    }
    out.data.append(chunk.data(), produced);
    if (rc == Z_OK && zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      out.status = inflate_status::corrupt;
      out.message = "the gzip body is truncated";
      out.data.clear();
      return out;
    }
  }
  const bool trailing = zs.avail_in != 0;
  inflateEnd(&zs);
  if (trailing) {
    out.status = inflate_status::corrupt;
    out.message = "the gzip body has bytes after the end of the compressed stream";
    out.data.clear();
    return out;
  }
  out.status = inflate_status::ok;
  return out;
}

}  // namespace wharf::http

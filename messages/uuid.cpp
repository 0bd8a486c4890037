#include "messages/uuid.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <sys/random.h>

namespace kryten::detail {

namespace {

void random_bytes(unsigned char* out, std::size_t n) {
  while (n > 0) {
    auto got = getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error("getrandom failed");
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

}  // namespace

std::string uuid4() {
  unsigned char b[16];
  random_bytes(b, sizeof(b));
  return uuid4_from(b);
}

std::string uuid4_from(const unsigned char (&bytes)[16]) {
  unsigned char b[16];
  std::copy(bytes, bytes + 16, b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof(buf),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
  return buf;
}

}  // namespace kryten::detail

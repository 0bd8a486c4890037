// A listening TCP socket for the HTTP probe: non-blocking, close-on-exec,
// SO_REUSEADDR only (SO_REUSEPORT would let a second server bind a port that
// is in use).
#pragma once

#include <string>

namespace kryten::detail {

struct tcp_listener {
  int fd = -1;
  int port = 0;  // the bound port (the one the kernel picked for port 0)
};

/// Binds `host` (a name or an address, resolved with getaddrinfo; the first
/// address that binds wins) and listens with `backlog`. Throws
/// std::runtime_error whose what() is the reason alone ("Address already in
/// use"), for the caller to put in context.
tcp_listener open_tcp_listener(const std::string& host, int port, int backlog);

}  // namespace kryten::detail

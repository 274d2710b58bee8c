// Binds the rendezvous port on the configured address (see listen_socket.h).
#include "dist/listen_socket.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace halo::dist {

std::string port_in_use_message(const std::string& host, int port) {
  return "port " + std::to_string(port) + " on " + host +
         " is already in use: another job (or program) serves there. Give each job its own "
         "MASTER_PORT (halo-clip launch --master-port, or --standalone for a free one)";
}

bool is_port_in_use_error(const std::string& what) {
  std::string lower(what.size(), ' ');
  std::transform(what.begin(), what.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("address already in use") != std::string::npos ||
         lower.find("eaddrinuse") != std::string::npos;
}

int listen_on(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  HALO_CHECK(rc == 0, "cannot resolve MASTER_ADDR '", host, "': ", gai_strerror(rc));
  int fd = -1;
  int last_errno = EADDRNOTAVAIL;
  for (const addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    const int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (s < 0) {
      last_errno = errno;
      continue;
    }
    const int on = 1;
    // As the store's own socket: a restarted job may reuse a port in TIME_WAIT. A port that
    // another socket listens on still fails with EADDRINUSE.
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(s, a->ai_addr, a->ai_addrlen) == 0 && listen(s, SOMAXCONN) == 0) {
      fd = s;
    } else {
      last_errno = errno;
      close(s);
    }
  }
  freeaddrinfo(found);
  if (fd >= 0) return fd;
  if (last_errno == EADDRINUSE) HALO_FAIL(port_in_use_message(host, port));
  if (last_errno == EADDRNOTAVAIL) return -1;
  HALO_FAIL("cannot listen on ", host, ":", port, ": ", std::strerror(last_errno));
}

}  // namespace halo::dist

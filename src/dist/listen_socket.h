// The rendezvous store's listening socket, bound to MASTER_ADDR only (not every interface), and
// the one message for a port that another job already holds.
#pragma once
#include <string>

namespace halo::dist {

// Binds host:port (host resolved; loopback stays loopback) and listens. Returns the socket, or
// -1 when host is not an address of this machine (a name that resolves elsewhere, e.g. through
// NAT): the caller then serves on every interface. Throws halo::Error naming the port when it is
// already in use, and for any other failure.
int listen_on(const std::string& host, int port);

// "port P on HOST is already in use: ..." with what to do about it.
std::string port_in_use_message(const std::string& host, int port);

// Whether a LibTorch store error says that its port was taken (the classic and libuv stores word
// it differently).
bool is_port_in_use_error(const std::string& what);

}  // namespace halo::dist

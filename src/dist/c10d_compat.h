// The c10d API differences between LibTorch 1.13 (Debian 12, CI), 2.6 (Debian 13) and 2.x (the
// GPU machines), in one place: the collectives' base class became c10d::Backend in 2.0, and
// TCPStore gained a libuv server (an option since 2.2, the default since 2.4, absent from builds
// without libuv such as Debian's). The Gloo and NCCL headers compile only with USE_C10D_GLOO /
// USE_C10D_NCCL defined (CMakeLists.txt sets them).
#pragma once
#include <atomic>
#include <string>
#include <type_traits>
#include <utility>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "common/torch_compat.h"  // HALO_TORCH_AT_LEAST

#if HALO_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace halo::dist::compat {

#if HALO_TORCH_AT_LEAST(2, 0)
using Collectives = c10d::Backend;  // ProcessGroupGloo / ProcessGroupNCCL derive from it
#else
using Collectives = c10d::ProcessGroup;
#endif

namespace detail {
template <class T, class = void>
struct HasUseLibUv : std::false_type {};
template <class T>
struct HasUseLibUv<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};

template <class Options>
void set_use_libuv(Options& o, bool on) {
  if constexpr (HasUseLibUv<Options>::value) {
    o.useLibUV = on;
  } else {
    (void)o;
    (void)on;
  }
}

template <class T, class = void>
struct HasMasterListenFd : std::false_type {};
template <class T>
struct HasMasterListenFd<T, std::void_t<decltype(std::declval<T&>().masterListenFd)>>
    : std::true_type {};

// Set once a store asking for libuv got "built without libuv": later stores skip the attempt.
inline std::atomic<bool>& libuv_missing() {
  static std::atomic<bool> missing{!HasUseLibUv<c10d::TCPStoreOptions>::value};
  return missing;
}
}  // namespace detail

// Whether this LibTorch's TCPStore has the libuv option at all (1.13 has the classic store only).
constexpr bool kTcpStoreHasLibUvOption = detail::HasUseLibUv<c10d::TCPStoreOptions>::value;

// Whether the store can serve on a socket bound by the caller (TCPStoreOptions::masterListenFd,
// LibTorch >= 2.2); 1.13's store always listens on every interface.
constexpr bool kTcpStoreTakesListenSocket = detail::HasMasterListenFd<c10d::TCPStoreOptions>::value;

// Serve on this listening socket (the store closes it). Only where kTcpStoreTakesListenSocket.
template <class Options>
void set_listen_socket(Options& o, int fd) {
  if constexpr (detail::HasMasterListenFd<Options>::value) {
    o.masterListenFd = fd;
  } else {
    (void)o;
    (void)fd;
  }
}

// The error a TCPStore built without libuv gives when asked for it (LibTorch >= 2.4 asks by
// default): "use_libuv was requested but PyTorch was build without libuv support".
inline bool is_missing_libuv_error(const std::string& what) {
  return what.find("without libuv support") != std::string::npos;
}

// A TCPStore served by libuv where this build has it, else the classic TCPStore: it asks for
// libuv first and, on the missing-libuv error only (raised before any socket is opened), falls
// back to the classic store and remembers that for the rest of the process. Every other error
// propagates unchanged.
inline c10::intrusive_ptr<c10d::TCPStore> make_tcp_store(const std::string& host,
                                                         c10d::TCPStoreOptions options) {
  if (!detail::libuv_missing().load()) {
    detail::set_use_libuv(options, true);
    try {
      return c10::make_intrusive<c10d::TCPStore>(host, options);
    } catch (const std::exception& e) {
      if (!is_missing_libuv_error(e.what())) throw;
      detail::libuv_missing().store(true);
    }
  }
  detail::set_use_libuv(options, false);
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

// Whether make_tcp_store serves with libuv in this process (after the first store, or a probe).
inline bool tcp_store_uses_libuv() {
  return !detail::libuv_missing().load();
}

}  // namespace halo::dist::compat

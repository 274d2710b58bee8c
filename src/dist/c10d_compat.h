// The c10d API differences between LibTorch 1.13 (Debian, CI) and 2.x (the GPU machines), in
// one place: the collectives' base class became c10d::Backend in 2.0. The Gloo and NCCL
// headers compile only with USE_C10D_GLOO / USE_C10D_NCCL defined (CMakeLists.txt sets them).
#pragma once
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace halo::dist::compat {

#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;  // ProcessGroupGloo / ProcessGroupNCCL derive from it
#else
using Collectives = c10d::ProcessGroup;
#endif

}  // namespace halo::dist::compat

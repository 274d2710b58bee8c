// The few LibTorch API differences between 1.13 (Debian, CI) and 2.x (the GPU machine), in one
// place. Include this instead of testing TORCH_VERSION_MAJOR elsewhere.
#pragma once
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
// c10::Allocator::allocate lost its const and gained a pure virtual copy_data().
#define HALO_ALLOCATOR_ALLOCATE_CONST
#define HALO_ALLOCATOR_HAS_COPY_DATA 1
#else
#define HALO_ALLOCATOR_ALLOCATE_CONST const
#define HALO_ALLOCATOR_HAS_COPY_DATA 0
#endif

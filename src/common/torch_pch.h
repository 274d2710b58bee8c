// Precompiled header: the heavy LibTorch headers, parsed once per build instead of per file.
#pragma once
#include <torch/torch.h>

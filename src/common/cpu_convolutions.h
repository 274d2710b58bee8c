// A known-answer check of LibTorch's oneDNN convolutions on CPU. Debian 13's LibTorch 2.6 (with
// its oneDNN 3.7) returns wrong input gradients for 3x3, stride-1 convolutions whose output
// channels are not a multiple of 16; when the check finds that, CPU convolutions run ATen's
// native kernels for the rest of the process (docs/training.md, "Convolutions on CPU").
#pragma once
#include <string>

namespace halo {

struct CpuConvolutionCheck {
  bool onednn_enabled = false;  // this LibTorch has oneDNN and it was on when the check ran
  bool onednn_agrees = true;    // every case matched the native kernel (true when not enabled)
  std::string finding;          // the first case that disagreed, in words
};

// The check itself: a few 3x3 convolutions, their gradients from oneDNN against ATen's native
// kernels, with inputs from its own generator. Changes nothing: the global generator and the
// oneDNN switch are as they were. A few milliseconds.
CpuConvolutionCheck run_cpu_convolution_check();

// Runs the check once per process (later calls return the first result). When oneDNN
// disagrees, turns it off for CPU work and says so once on stderr.
const CpuConvolutionCheck& check_cpu_convolutions();

}  // namespace halo

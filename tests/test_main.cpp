// The test runner's entry point: the CPU convolution check that halo-clip runs at start-up
// (src/common/cpu_convolutions.h), so that the tests train under the same kernels as the tool.
#include <gtest/gtest.h>

#include "common/cpu_convolutions.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  halo::check_cpu_convolutions();
  return RUN_ALL_TESTS();
}

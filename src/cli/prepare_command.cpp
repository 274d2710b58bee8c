// halo-clip prepare: placeholder until implemented.
#include "cli/commands.h"
#include "common/error.h"

namespace halo::cli {

int run_prepare(const std::vector<std::string>&) { HALO_FAIL("'prepare' is not implemented yet"); }

}  // namespace halo::cli

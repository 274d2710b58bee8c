// halo-clip tokenizer: placeholder until implemented.
#include "cli/commands.h"
#include "common/error.h"

namespace halo::cli {

int run_tokenizer(const std::vector<std::string>&) { HALO_FAIL("'tokenizer' is not implemented yet"); }

}  // namespace halo::cli

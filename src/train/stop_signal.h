// Turns SIGINT and SIGTERM into a flag the training loop polls, so that it can write a
// checkpoint and exit cleanly. A second signal of the same kind ends the process at once.
#pragma once

namespace halo::train {

class StopSignal {
 public:
  StopSignal();   // installs the handlers
  ~StopSignal();  // restores the previous ones
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  int received() const;  // the signal number, or 0
};

}  // namespace halo::train

// The ordered, bounded hand-off from loader workers to the training loop, shared by BatchLoader
// and ShardLoader, and the workers' threads. Workers build batches in any order and put them;
// take() returns them in batch order. A worker may start batch k only while k < (next batch taken)
// + prefetch, so at most `prefetch` batches wait in memory. A worker's error reaches the loop at
// its next take().
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/batch.h"

namespace halo::data {

class BatchQueue {
 public:
  ~BatchQueue() { stop(); }
  // Empties the queue for batches [first, end) (0 <= first <= end, else an error naming the
  // batch); no worker may be running.
  void reset(int64_t first, int64_t end, int64_t prefetch);
  // Starts `count` threads running work(worker index), each with one intra-op thread (their
  // tensor ops are small; LibTorch's default would start an OpenMP team as wide as the machine
  // per thread, competing with the training step). An exception thrown by work goes to fail().
  // None when the epoch is already over.
  void start_workers(int64_t count, const std::function<void(int64_t)>& work);
  // Blocks until batch `index` may be built; false once the queue is stopped or a worker failed.
  bool wait_for_turn(int64_t index);
  // The lowest batch no worker has claimed, once it may be built; nullopt after the last one,
  // once the queue is stopped or a worker failed.
  std::optional<int64_t> claim_next();
  void put(int64_t index, Batch batch);
  // Keeps the first worker error (take() rethrows it) and wakes everyone.
  void fail(std::exception_ptr error);
  // Releases every waiting worker and joins the threads; until reset(), waits fail.
  void stop();
  // Whether stop() was called; without the lock, for workers' long loops.
  bool stopped() const { return stopping_.load(); }
  // The next batch in order, or nullopt after the last. Rethrows a worker's error.
  std::optional<Batch> take();

 private:
  bool may_build(int64_t index) const { return index < next_to_take_ + prefetch_; }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  std::atomic<bool> stopping_{false};
  int64_t next_to_claim_ = 0, next_to_take_ = 0, end_ = 0, prefetch_ = 1;
};

}  // namespace halo::data

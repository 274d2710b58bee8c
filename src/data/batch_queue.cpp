// See batch_queue.h.
#include "data/batch_queue.h"

#include <utility>

#include <ATen/Parallel.h>

#include "common/error.h"

namespace halo::data {

void BatchQueue::reset(int64_t first, int64_t end, int64_t prefetch) {
  HALO_CHECK(first >= 0 && first <= end, "loader: batch ", first, " is outside epoch of ", end,
             " batches");
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  next_to_claim_ = next_to_take_ = first;
  end_ = end;
  prefetch_ = prefetch;
}

void BatchQueue::start_workers(int64_t count, const std::function<void(int64_t)>& work) {
  if (next_to_take_ >= end_) return;
  for (int64_t w = 0; w < count; ++w) {
    threads_.emplace_back([this, w, work] {
      at::set_num_threads(1);  // (OpenMP team sizes are per thread: the training loop's stays)
      try {
        work(w);
      } catch (...) {
        fail(std::current_exception());
      }
    });
  }
}

bool BatchQueue::wait_for_turn(int64_t index) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return stopping_ || error_ || may_build(index); });
  return !stopping_ && !error_;
}

std::optional<int64_t> BatchQueue::claim_next() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] {
    return stopping_ || error_ || next_to_claim_ >= end_ || may_build(next_to_claim_);
  });
  if (stopping_ || error_ || next_to_claim_ >= end_) return std::nullopt;
  return next_to_claim_++;
}

void BatchQueue::put(int64_t index, Batch batch) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.emplace(index, std::move(batch));
  }
  cv_.notify_all();
}

void BatchQueue::fail(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::move(error);
  }
  cv_.notify_all();
}

void BatchQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::optional<Batch> BatchQueue::take() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_take_ >= end_) return std::nullopt;
  cv_.wait(lock, [&] { return error_ || ready_.count(next_to_take_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto node = ready_.extract(next_to_take_++);
  lock.unlock();
  cv_.notify_all();
  return std::move(node.mapped());
}

}  // namespace halo::data

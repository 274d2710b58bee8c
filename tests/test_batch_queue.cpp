// halo-clip's loader hand-off (data/batch_queue.h): batches come out in order whatever order the
// workers put them in, no worker runs more than `prefetch` batches ahead, and a worker's error
// or a stop reaches everyone waiting.
#include <chrono>
#include <future>
#include <stdexcept>

#include <gtest/gtest.h>

#include "data/batch_queue.h"

namespace halo::test {
namespace {

data::Batch numbered_batch(int64_t index) {
  data::Batch b;
  b.index = index;
  return b;
}

TEST(BatchQueue, TakesInOrderWhateverOrderTheWorkersPut) {
  data::BatchQueue q;
  q.reset(/*first=*/0, /*end=*/3, /*prefetch=*/2);
  EXPECT_EQ(q.claim_next(), 0);
  EXPECT_EQ(q.claim_next(), 1);
  q.put(1, numbered_batch(1));
  q.put(0, numbered_batch(0));
  EXPECT_EQ(q.take()->index, 0);
  EXPECT_EQ(q.claim_next(), 2);  // batch 0 taken: batch 2 is within the window
  q.put(2, numbered_batch(2));
  EXPECT_EQ(q.take()->index, 1);
  EXPECT_EQ(q.take()->index, 2);
  EXPECT_FALSE(q.take().has_value());
  EXPECT_FALSE(q.claim_next().has_value());
  // A resumed epoch starts at its first batch.
  q.reset(5, 6, 2);
  EXPECT_EQ(q.claim_next(), 5);
}

TEST(BatchQueue, AWorkerWaitsUntilItsBatchIsWithinThePrefetchWindow) {
  data::BatchQueue q;
  q.reset(0, 4, 2);
  q.put(0, numbered_batch(0));
  auto turn = std::async(std::launch::async, [&] { return q.wait_for_turn(2); });
  EXPECT_EQ(turn.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "batch 2 may not start while batches 0 and 1 are untaken";
  EXPECT_EQ(q.take()->index, 0);
  EXPECT_TRUE(turn.get());
}

TEST(BatchQueue, AWorkersErrorIsRethrownByTakeAndReleasesTheOthers) {
  data::BatchQueue q;
  q.reset(0, 4, 1);
  auto waiting = std::async(std::launch::async, [&] { return q.wait_for_turn(3); });
  q.fail(std::make_exception_ptr(std::runtime_error("cannot decode image 'a.png'")));
  q.fail(std::make_exception_ptr(std::runtime_error("a later error")));  // the first one is kept
  EXPECT_FALSE(waiting.get());
  EXPECT_FALSE(q.claim_next().has_value());
  try {
    q.take();
    FAIL() << "take() should rethrow the worker's error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cannot decode image 'a.png'");
  }
}

TEST(BatchQueue, StopReleasesWaitingWorkersUntilTheNextReset) {
  data::BatchQueue q;
  q.reset(0, 4, 1);
  auto waiting = std::async(std::launch::async, [&] { return q.wait_for_turn(2); });
  q.stop();
  EXPECT_FALSE(waiting.get());
  EXPECT_TRUE(q.stopped());
  EXPECT_FALSE(q.claim_next().has_value());
  q.reset(0, 4, 1);
  EXPECT_FALSE(q.stopped());
  EXPECT_TRUE(q.wait_for_turn(0));
}

}  // namespace
}  // namespace halo::test

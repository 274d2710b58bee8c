// Parameter broadcast and bucketed gradient averaging (see grad_allreduce.h).
#include "dist/grad_allreduce.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::dist {

void broadcast_parameters(const std::vector<torch::Tensor>& parameters, ProcessGroup& group) {
  if (group.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters) {
    torch::Tensor buffer = p.detach().contiguous();
    group.broadcast(buffer, 0);
    if (!buffer.is_same(p)) p.detach().copy_(buffer);
  }
}

GradientAverager::GradientAverager(const std::vector<torch::Tensor>& parameters,
                                   ProcessGroup& group, double bucket_mb)
    : group_(group) {
  if (group_.size() == 1) return;
  for (auto& p : parameters) {
    if (p.requires_grad()) parameters_.push_back(p);  // frozen ones never get a gradient
  }
  HALO_CHECK(bucket_mb > 0, "dist.bucket_mb must be > 0, got ", bucket_mb);
  const auto limit = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  // Consecutive parameters of one dtype and device share a bucket until it is full.
  int64_t bytes = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const torch::Tensor& p = parameters_[i];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits =
        !buckets_.empty() && bytes + size <= limit &&
        parameters_[buckets_.back().params.front()].options().dtype() == p.options().dtype() &&
        parameters_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.push_back({});
      bytes = 0;
    }
    buckets_.back().params.push_back(i);
    bytes += size;
  }
  for (auto& b : buckets_) {
    int64_t numel = 0;
    for (size_t i : b.params) numel += parameters_[i].numel();
    b.flat = torch::empty({numel}, parameters_[b.params.front()].options());
  }
}

void GradientAverager::average() {
  if (group_.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    int64_t offset = 0;
    for (size_t i : b.params) {
      const torch::Tensor& p = parameters_[i];
      torch::Tensor slot = b.flat.narrow(0, offset, p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
      } else {
        slot.zero_();
      }
      offset += p.numel();
    }
    std::vector<torch::Tensor> flat{b.flat};
    group_.all_reduce_sum(flat);
    b.flat.div_(group_.size());
    offset = 0;
    for (size_t i : b.params) {
      torch::Tensor p = parameters_[i];
      torch::Tensor mean = b.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else if (mean.ne(0).any().item<bool>()) {  // another rank has a gradient here
        p.mutable_grad() = mean.clone();
      }
      offset += p.numel();
    }
  }
}

}  // namespace halo::dist

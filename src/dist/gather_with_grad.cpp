// The autograd function behind gather_with_grad (see gather_with_grad.h).
#include "dist/gather_with_grad.h"

#include <torch/torch.h>

namespace halo::dist {

namespace {

class GatherWithGrad : public torch::autograd::Function<GatherWithGrad> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               ProcessGroup* group) {
    ctx->saved_data["rows"] = local.size(0);
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    return group->all_gather(local.detach());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    // Every rank's loss reads this rank's slot: sum their gradients, keep this rank's slice.
    std::vector<torch::Tensor> summed{grads[0].contiguous().clone()};
    group->all_reduce_sum(summed);
    return {summed[0].narrow(0, group->rank() * rows, rows), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gather_with_grad(const torch::Tensor& local, ProcessGroup& group) {
  if (group.size() == 1) return local;
  return GatherWithGrad::apply(local, &group);
}

loss::PairBatch global_pair_batch(const torch::Tensor& image, const torch::Tensor& text,
                                  ProcessGroup& group) {
  if (group.size() == 1) return loss::PairBatch::local(image, text);
  return loss::PairBatch{image, text, gather_with_grad(image, group), gather_with_grad(text, group),
                         group.rank() * image.size(0), {}};
}

}  // namespace halo::dist

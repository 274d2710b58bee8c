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

class AllReduceSumWithGrad : public torch::autograd::Function<AllReduceSumWithGrad> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               ProcessGroup* group) {
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    std::vector<torch::Tensor> sum{local.detach().contiguous().clone()};
    group->all_reduce_sum(sum);
    return sum[0];
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    // Every rank's output is the same sum of every rank's input: the gradient of this rank's
    // input is the sum of the output gradients of all ranks.
    std::vector<torch::Tensor> summed{grads[0].contiguous().clone()};
    group->all_reduce_sum(summed);
    return {summed[0], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor global_batch_mean(const torch::Tensor& local, ProcessGroup& group) {
  if (group.size() == 1) return local.mean(0);
  // The row sums and the row count in one collective, in float32 at least (bf16 sums of a
  // large batch would lose the mean's low bits).
  const torch::ScalarType type =
      local.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const torch::Tensor rows =
      torch::full({1}, static_cast<double>(local.size(0)), local.options().dtype(type));
  const torch::Tensor total =
      AllReduceSumWithGrad::apply(torch::cat({local.to(type).sum(0), rows}), &group);
  const int64_t d = local.size(1);
  return (total.narrow(0, 0, d) / total.narrow(0, d, 1).detach()).to(local.scalar_type());
}

torch::Tensor gather_with_grad(const torch::Tensor& local, ProcessGroup& group) {
  if (group.size() == 1) return local;
  return GatherWithGrad::apply(local, &group);
}

loss::PairBatch global_pair_batch(const torch::Tensor& image, const torch::Tensor& text,
                                  ProcessGroup& group) {
  if (group.size() == 1) return loss::PairBatch::local(image, text);
  return loss::PairBatch{image,
                         text,
                         gather_with_grad(image, group),
                         gather_with_grad(text, group),
                         group.rank() * image.size(0),
                         {},
                         {}};
}

}  // namespace halo::dist

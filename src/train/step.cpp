// One optimiser step, with or without exact gradient accumulation (see step.h).
#include "train/step.h"

#include <algorithm>
#include <mutex>

#include <torch/torch.h>

#include "common/error.h"
#include "common/torch_compat.h"
#include "dist/gather_with_grad.h"
#include "loss/partner_drop.h"
#include "train/optimizer.h"

namespace halo::train {

namespace {

torch::Tensor generator_state(const torch::Device& device) {
  at::Generator generator =
      at::globalContext().defaultGenerator(device);  // CUDA: the current device's without an index
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(const torch::Device& device, const torch::Tensor& state) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// For the length of a step with several processes, centring takes the mean of the global batch
// (dist::global_batch_mean); after it, the model's own rows again (nothing keeps the group).
class GlobalCentring {
 public:
  GlobalCentring(encoders::ClipModelImpl& model, dist::ProcessGroup& group) : model_(model) {
    if (group.size() > 1) {
      model_.set_batch_mean(
          [&group](const torch::Tensor& x) { return dist::global_batch_mean(x, group); });
    }
  }
  ~GlobalCentring() { model_.set_batch_mean({}); }
  GlobalCentring(const GlobalCentring&) = delete;
  GlobalCentring& operator=(const GlobalCentring&) = delete;

 private:
  encoders::ClipModelImpl& model_;
};

}  // namespace

RngSnapshot::RngSnapshot(const torch::Device& device)
    : device_(device), cpu_state_(generator_state(torch::kCPU)) {
  if (device.is_cuda()) device_state_ = generator_state(device);
}

void RngSnapshot::restore() const {
  set_generator_state(torch::kCPU, cpu_state_);
  if (device_state_.defined()) set_generator_state(device_, device_state_);
}

StepResult train_step(const StepModules& m, const StepOptions& o, const torch::Tensor& images,
                      const torch::Tensor& tokens, const torch::Tensor& sink_share, int64_t step) {
  const torch::Device device = images.device();
  // Centring subtracts the global batch's mean, as in one process (a collective per modality).
  const GlobalCentring global_centring(m.model, m.group);
  // K micro-batches of n / K rows (sizes differ by at most one where data.skip_bad shrank the
  // batch), at most one per row.
  const int64_t n = images.size(0), K = std::min(o.accum_steps, n);
  HALO_CHECK(K >= 1, "train.accum_steps must be >= 1, got ", o.accum_steps);
  auto part = [&](const torch::Tensor& t, int64_t k) {
    return t.narrow(0, k * n / K, (k + 1) * n / K - k * n / K);
  };

  // The embeddings the loss sees. K > 1: the towers' outputs of every micro-batch, computed
  // without a graph and joined into leaves (image_raw, text_raw) that collect the gradient.
  torch::Tensor image_emb, text_emb, image_raw, text_raw;
  std::vector<RngSnapshot> rng;  // before each micro-batch's first pass
  if (K == 1) {
    AutocastScope autocast(device.type(), o.bf16);
    image_emb = m.model.encode_image(images);
    text_emb = m.model.encode_text(tokens);
  } else {
    std::vector<torch::Tensor> image_parts, text_parts;
    {
      torch::NoGradGuard no_grad;
      AutocastScope autocast(device.type(), o.bf16);
      for (int64_t k = 0; k < K; ++k) {
        rng.emplace_back(device);
        image_parts.push_back(m.model.embed_image(part(images, k)));
        text_parts.push_back(m.model.embed_text(part(tokens, k)));
      }
    }
    // Casts of the weights cached under no_grad carry no graph: the second pass must cast again
    // (an outer autocast scope would otherwise keep them past the scope above).
    if (o.bf16) at::autocast::clear_cache();
    image_raw = torch::cat(image_parts).requires_grad_();
    text_raw = torch::cat(text_parts).requires_grad_();
    AutocastScope autocast(device.type(), o.bf16);
    image_emb = m.model.center_image(image_raw);  // the rank's whole batch, as encode_image
    text_emb = m.model.center_text(text_raw);
  }

  // The loss of the global batch and its gradient: into the loss's scalars, and (K = 1) the
  // towers, or (K > 1) the leaves.
  loss::PairBatch pairs = dist::global_pair_batch(image_emb, text_emb, m.group);
  if (sink_share.defined()) pairs.sink_share = sink_share.to(device, torch::kFloat);
  if (o.partner_drop > 0) {  // drawn by global row: the same pairs whatever the ranks
    pairs.partner_dropped = loss::partner_dropped_rows(o.partner_seed, step, pairs.row_offset,
                                                       pairs.rows(), o.partner_drop, device);
  }
  loss::LossOutput out = m.loss.forward(pairs);
  m.optimizer.zero_grad();
  out.total.backward();
  if (K > 1) {  // each micro-batch again, with a graph, back-propagating its slice
    const RngSnapshot after(device);
    const torch::Tensor image_grad = image_raw.grad(), text_grad = text_raw.grad();
    HALO_CHECK(image_grad.defined() && text_grad.defined(),
               "the loss has no gradient for the embeddings");
    for (int64_t k = 0; k < K; ++k) {
      rng[static_cast<size_t>(k)].restore();
      torch::Tensor image_k, text_k;
      {
        AutocastScope autocast(device.type(), o.bf16);
        image_k = m.model.embed_image(part(images, k));
        text_k = m.model.embed_text(part(tokens, k));
      }
      torch::autograd::backward({image_k, text_k}, {part(image_grad, k), part(text_grad, k)});
    }
    after.restore();
  }
  m.grads.average();  // the mean over ranks: the gradient of the global batch's loss
  const torch::Tensor grad_norm = clip_gradients(m.parameters, o.grad_clip);
  m.optimizer.step();

  // The hooks see this rank's pairs as a slice of the detached global batch.
  const torch::Tensor image = pairs.image_cols.detach(), text = pairs.text_cols.detach();
  const int64_t end = pairs.row_offset + pairs.rows();
  loss::PairBatch seen{image.slice(0, pairs.row_offset, end),
                       text.slice(0, pairs.row_offset, end),
                       image,
                       text,
                       pairs.row_offset,
                       {},
                       {}};
  return {std::move(out), std::move(seen), grad_norm};
}

}  // namespace halo::train

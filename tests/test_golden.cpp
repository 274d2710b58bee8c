// Golden test: every *.json in tests/fixtures/ (format of shared reference make_fixtures.py)
// is checked case by case against the C++ losses: loss, parts, abstain bias, true and shifted
// logits, pair scores and every gradient, to rtol 1e-4 / atol 1e-5.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_loss.h"
#include "loss/halo_terms.h"
#include "loss/shifted_distance.h"
#include "test_util.h"

namespace halo::test {
namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;

std::vector<std::filesystem::path> fixture_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(HALO_FIXTURE_DIR)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The fixtures, parsed once for the whole test program.
const std::vector<std::pair<std::string, YAML::Node>>& fixtures() {
  static const auto docs = [] {
    std::vector<std::pair<std::string, YAML::Node>> out;
    for (const auto& path : fixture_files())
      out.emplace_back(path.filename(), YAML::LoadFile(path));
    return out;
  }();
  return docs;
}

torch::Tensor f32(const YAML::Node& node) {
  return tensor_from_json(node).to(torch::kFloat);
}

TEST(Golden, FixtureFolderHasCasesOfBothLosses) {
  int64_t halo_cases = 0, clip_cases = 0;
  for (const auto& [file, doc] : fixtures()) {
    halo_cases += doc["halo"] ? static_cast<int64_t>(doc["halo"].size()) : 0;
    clip_cases += doc["halo_clip"] ? static_cast<int64_t>(doc["halo_clip"].size()) : 0;
  }
  EXPECT_GT(halo_cases, 0) << "no classification cases in " << HALO_FIXTURE_DIR;
  EXPECT_GT(clip_cases, 0) << "no batch-loss cases in " << HALO_FIXTURE_DIR;
}

TEST(Golden, ClassificationHaloMatchesReference) {
  for (const auto& [file, doc] : fixtures()) {
    for (const auto& c : doc["halo"]) {
      SCOPED_TRACE(file + ": " + c["name"].as<std::string>());
      const auto& e = c["expected"];
      const int64_t D = c["embed_dim"].as<int64_t>(), K = c["num_classes"].as<int64_t>();
      loss::HaloLoss halo(loss::HaloLossOptions(D, K)
                              .distill(c["distill"].as<bool>())
                              .label_smoothing(c["label_smoothing"].as<double>()));
      {
        torch::NoGradGuard no_grad;
        halo->gamma_raw.fill_(c["gamma_raw"].as<double>());
      }
      torch::Tensor pos = f32(c["pos"]).requires_grad_(true);
      torch::Tensor cen = f32(c["centroids"]).requires_grad_(true);
      torch::Tensor target = tensor_from_json(c["target"]).to(torch::kLong);
      auto out = halo(pos, target, cen);
      out.loss.backward();

      EXPECT_NEAR(halo->abstain_bias(), e["abstain_bias"].as<double>(), 1e-9);
      EXPECT_TRUE(all_close(out.loss, tensor_from_json(e["loss"]), kRtol, kAtol)) << "loss";
      EXPECT_TRUE(all_close(out.logits_true, tensor_from_json(e["logits_true"]), kRtol, kAtol))
          << "logits_true";
      EXPECT_TRUE(all_close(pos.grad(), tensor_from_json(e["grad_pos"]), kRtol, kAtol))
          << "grad_pos";
      EXPECT_TRUE(all_close(cen.grad(), tensor_from_json(e["grad_centroids"]), kRtol, kAtol))
          << "grad_centroids";
      EXPECT_TRUE(
          all_close(halo->gamma_raw.grad(), tensor_from_json(e["grad_gamma_raw"]), kRtol, kAtol))
          << "grad_gamma_raw";
    }
  }
}

torch::Tensor part(const loss::LossOutput& out, const std::string& name) {
  for (const auto& [key, value] : out.parts) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "loss has no part named " << name;
  return torch::zeros({1});
}

TEST(Golden, BatchHaloMatchesReference) {
  for (const auto& [file, doc] : fixtures()) {
    for (const auto& c : doc["halo_clip"]) {
      SCOPED_TRACE(file + ": " + c["name"].as<std::string>());
      const auto& e = c["expected"];
      loss::ContrastiveLossOptions options;
      options.name = "halo";
      options.embed_dim = c["embed_dim"].as<int64_t>();
      options.num_candidates = c["num_candidates"].as<int64_t>();
      options.label_smoothing = c["label_smoothing"].as<double>();
      options.distill = c["distill"].as<bool>();
      auto halo = loss::make_contrastive_loss(options);
      torch::Tensor gamma_raw = halo->named_parameters()["gamma_raw"];
      {
        torch::NoGradGuard no_grad;
        gamma_raw.fill_(c["gamma_raw"].as<double>());
      }
      const double b =
          loss::abstain_bias(options.embed_dim, options.num_candidates, options.label_smoothing);
      EXPECT_NEAR(b, e["abstain_bias"].as<double>(), 1e-9);

      torch::Tensor image = f32(c["image"]).requires_grad_(true);
      torch::Tensor text = f32(c["text"]).requires_grad_(true);
      auto out = halo->forward(loss::PairBatch::local(image, text));
      out.total.backward();
      EXPECT_TRUE(all_close(out.total, tensor_from_json(e["loss"]), kRtol, kAtol)) << "loss";
      for (const char* name : {"ce_image_to_text", "ce_text_to_image", "radial"}) {
        EXPECT_TRUE(all_close(part(out, name), tensor_from_json(e[name]), kRtol, kAtol)) << name;
      }
      EXPECT_TRUE(all_close(image.grad(), tensor_from_json(e["grad_image"]), kRtol, kAtol))
          << "grad_image";
      EXPECT_TRUE(all_close(text.grad(), tensor_from_json(e["grad_text"]), kRtol, kAtol))
          << "grad_text";
      EXPECT_TRUE(all_close(gamma_raw.grad(), tensor_from_json(e["grad_gamma_raw"]), kRtol, kAtol))
          << "grad_gamma_raw";

      torch::NoGradGuard no_grad;
      EXPECT_TRUE(all_close(halo->mismatch_score(image, text), tensor_from_json(e["pair_abstain"]),
                            kRtol, kAtol))
          << "pair_abstain";
      torch::Tensor S =
          loss::shifted_distance(image, text, loss::gamma_from_raw(gamma_raw, torch::kFloat));
      EXPECT_TRUE(all_close(S, tensor_from_json(e["shifted_logits"]), kRtol, kAtol))
          << "shifted_logits";
    }
  }
}

// Partner dropout (loss.sink_partner_drop) against tests/oracle/halo_sink_oracle.py's cases
// (tests/fixtures/halo_partner_drop.json): rows of a global batch at an offset, some with their
// partner hidden; the dense loss and the tiled one (tiles of 4: several, the last partial).
TEST(Golden, PartnerDropMatchesTheOracle) {
  int64_t cases = 0, dropped_rows = 0;
  for (const auto& [file, doc] : fixtures()) {
    for (const auto& c : doc["halo_clip_partner_drop"]) {
      for (const char* implementation : {"dense", "tiled"}) {
        SCOPED_TRACE(file + ": " + c["name"].as<std::string>() + ", " + implementation);
        const auto& e = c["expected"];
        loss::HaloClipOptions options;
        options.embed_dim = c["embed_dim"].as<int64_t>();
        options.label_smoothing = c["label_smoothing"].as<double>();
        options.distill = c["distill"].as<bool>();
        options.implementation = implementation;
        options.tile_size = 4;
        torch::Tensor gamma_raw =
            torch::full({1}, c["gamma_raw"].as<double>(), torch::kFloat).requires_grad_(true);
        const int64_t offset = c["row_offset"].as<int64_t>();
        torch::Tensor image_rows = f32(c["image_rows"]).requires_grad_(true);
        torch::Tensor text_rows = f32(c["text_rows"]).requires_grad_(true);
        torch::Tensor image_cols = f32(c["image_cols"]).requires_grad_(true);
        torch::Tensor text_cols = f32(c["text_cols"]).requires_grad_(true);
        const int64_t n = image_rows.size(0), m = image_cols.size(0);
        // The rows inside the columns are the row tensors, as in one process, so that their
        // gradient collects both uses (the oracle builds its columns the same way).
        auto columns = [&](const torch::Tensor& cols, const torch::Tensor& rows) {
          return torch::cat(
              {cols.narrow(0, 0, offset), rows, cols.narrow(0, offset + n, m - offset - n)});
        };
        loss::PairBatch batch{image_rows,
                              text_rows,
                              columns(image_cols, image_rows),
                              columns(text_cols, text_rows),
                              offset,
                              {},
                              {}};
        batch.partner_dropped = tensor_from_json(c["dropped"]).to(torch::kBool);
        dropped_rows += batch.partner_dropped.sum().item<int64_t>();
        const auto out =
            loss::halo_clip_loss(batch, gamma_raw, c["abstain_bias"].as<double>(), options);
        out.total.backward();
        EXPECT_TRUE(all_close(out.total, tensor_from_json(e["loss"]), kRtol, kAtol)) << "loss";
        EXPECT_TRUE(
            all_close(out.ce_image_to_text, tensor_from_json(e["ce_image_to_text"]), kRtol, kAtol));
        EXPECT_TRUE(
            all_close(out.ce_text_to_image, tensor_from_json(e["ce_text_to_image"]), kRtol, kAtol));
        EXPECT_TRUE(all_close(out.radial, tensor_from_json(e["radial"]), kRtol, kAtol));
        for (const auto& [name, t] :
             std::vector<std::pair<std::string, torch::Tensor>>{{"grad_image_rows", image_rows},
                                                                {"grad_text_rows", text_rows},
                                                                {"grad_image_cols", image_cols},
                                                                {"grad_text_cols", text_cols},
                                                                {"grad_gamma_raw", gamma_raw}}) {
          EXPECT_TRUE(all_close(t.grad(), tensor_from_json(e[name]), kRtol, kAtol)) << name;
        }
      }
      ++cases;
    }
  }
  EXPECT_GT(cases, 0) << "no partner dropout case in " << HALO_FIXTURE_DIR;
  EXPECT_GT(dropped_rows, 0);
}

}  // namespace
}  // namespace halo::test

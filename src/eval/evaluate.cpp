// Evaluation of a trained model on a manifest (see evaluate.h): embed, then retrieval in row
// chunks, zero-shot classification, mismatch detection, and the files the report reads.
#include "eval/evaluate.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "data/data_config.h"
#include "data/pair_set.h"
#include "loss/row_scores.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

std::vector<std::string> read_lines(const std::string& path, const char* what) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read ", what, " file '", path, "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  }
  HALO_CHECK(!lines.empty(), what, " file '", path, "' has no lines");
  return lines;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// AUROC and FPR@95 rank by `rank_by` when given (a monotone transform of `score` that does not
// saturate: the log-odds); the means and medians are of `score`.
DetectionScores detection(const std::string& name, const std::vector<double>& score,
                          const std::vector<int>& label,
                          const std::vector<double>* rank_by = nullptr) {
  DetectionScores d;
  d.name = name;
  d.auroc = auroc(rank_by ? *rank_by : score, label);
  d.fpr95 = fpr_at_tpr(rank_by ? *rank_by : score, label, 0.95);
  std::vector<double> clean, bad;
  for (size_t i = 0; i < score.size(); ++i) (label[i] ? bad : clean).push_back(score[i]);
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  d.mean_clean = mean(clean);
  d.mean_mismatched = mean(bad);
  d.median_clean = median(clean);
  d.median_mismatched = median(bad);
  return d;
}

// One embedding per class: the mean over the templates (of unit vectors for the cosine losses).
// Every prompt is embedded in one pass (a bank of negatives holds thousands of names).
torch::Tensor class_embeddings(train::TrainedModel& m, const std::vector<std::string>& classes,
                               const std::vector<std::string>& templates) {
  torch::NoGradGuard no_grad;
  const bool halo = m.loss->abstain_logit().has_value();
  std::vector<std::string> prompts;
  for (const auto& name : classes) {
    for (const auto& t : templates) {
      std::string p = t;
      const auto at = p.find("{}");
      prompts.push_back(at == std::string::npos ? p + " " + name : p.replace(at, 2, name));
    }
  }
  torch::Tensor e = embed_texts(m, prompts);
  if (!halo)
    e = torch::nn::functional::normalize(e, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto n = static_cast<int64_t>(classes.size()), t = static_cast<int64_t>(templates.size());
  return e.reshape({n, t, e.size(1)}).mean(1).to(m.device);
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The bank of negative captions (options.negatives or options.negatives_from): the candidates,
// deduplicated and without the class names, embedded as classes are, and the
// options.negatives_count farthest from every class. Undefined when no bank was asked for.
torch::Tensor negative_bank(train::TrainedModel& m, const EvalOptions& options,
                            const std::vector<std::string>& classes,
                            const std::vector<std::string>& templates,
                            const torch::Tensor& centroids, NegativeBank& info) {
  if (options.negatives.empty() && options.negatives_from.empty()) return {};
  std::vector<std::string> raw;
  if (!options.negatives.empty()) {
    raw = read_lines(options.negatives, "negatives");
    info.source = options.negatives;
  } else {
    const auto pairs =
        data::PairSet::open(options.negatives_from, data::DataConfig{}.manifest_options());
    raw = pairs->rows().captions;
    info.source = "the captions of " + options.negatives_from;
  }
  std::set<std::string> taken;
  for (const auto& c : classes) taken.insert(lowercase(c));
  std::vector<std::string> candidates;
  for (auto& text : raw) {
    if (text.empty() || !taken.insert(lowercase(text)).second) continue;
    candidates.push_back(std::move(text));
  }
  HALO_CHECK(!candidates.empty(), "no negative caption in ", info.source,
             " (after removing repeats and the class names)");
  info.candidates = static_cast<int64_t>(candidates.size());
  const torch::Tensor embedded = class_embeddings(m, candidates, templates);
  const std::vector<int64_t> keep =
      farthest_from_classes(embedded, centroids, options.negatives_count);
  info.size = static_cast<int64_t>(keep.size());
  for (size_t i = 0; i < std::min<size_t>(5, keep.size()); ++i)
    info.examples.push_back(candidates[static_cast<size_t>(keep[i])]);
  return embedded.index_select(0, torch::tensor(keep, torch::kInt64).to(embedded.device()));
}

ClassificationResult classify(train::TrainedModel& m, const torch::Tensor& image,
                              const std::vector<int64_t>& labels, const torch::Tensor& centroids,
                              int64_t chunk) {
  torch::NoGradGuard no_grad;
  const bool halo = m.loss->abstain_logit().has_value();
  ClassificationResult r;
  r.classes = centroids.size(0);
  r.count = image.size(0);
  std::vector<double> confidence;
  std::vector<int> correct;
  std::vector<int64_t> ranks;
  double abstain_sum = 0;
  for (int64_t start = 0; start < image.size(0); start += chunk) {
    const int64_t end = std::min(image.size(0), start + chunk);
    torch::Tensor logits = m.loss->logits(image.slice(0, start, end).to(m.device), centroids)
                               .to(torch::kCPU, torch::kFloat64);
    std::vector<int64_t> truth(labels.begin() + start, labels.begin() + end);
    const auto chunk_ranks = true_ranks(logits, truth);
    ranks.insert(ranks.end(), chunk_ranks.begin(), chunk_ranks.end());
    torch::Tensor probs;
    if (halo) {
      const torch::Tensor b =
          torch::full({logits.size(0), 1}, *m.loss->abstain_logit(), logits.options());
      probs = torch::softmax(torch::cat({logits, b}, 1), 1);
      abstain_sum += probs.select(1, logits.size(1)).sum().item<double>();
      probs = probs.slice(1, 0, logits.size(1));
    } else {
      probs = torch::softmax(logits, 1);
    }
    const auto [best, predicted] = probs.max(1);
    for (int64_t i = 0; i < best.size(0); ++i) {
      confidence.push_back(best[i].item<double>());
      correct.push_back(predicted[i].item<int64_t>() == truth[static_cast<size_t>(i)] ? 1 : 0);
    }
  }
  r.top1 = top_k_accuracy(ranks, 1);
  r.top5 = top_k_accuracy(ranks, 5);
  r.calibration = calibration(confidence, correct, 15);
  if (halo) r.mean_abstain = abstain_sum / static_cast<double>(image.size(0));
  return r;
}

void write_outputs(const EvalResult& r, const data::Manifest& manifest, const PairEmbeddings& emb,
                   const std::vector<double>& model_score,
                   const std::vector<double>& model_log_odds,
                   const std::vector<double>& cosine_score, const std::string& out_dir) {
  fs::create_directories(out_dir);
  halo::write_file_atomically((fs::path(out_dir) / "results.json").string(), eval_json(r) + "\n");
  halo::write_file_atomically((fs::path(out_dir) / "results.txt").string(), format_eval_table(r));

  std::ostringstream scores;
  // The norms too: HALO's pair score orders pairs as the cosine does where they are constant
  // (docs/loss.md, "When the pair score is a cosine").
  const std::vector<double> image_norm = to_doubles(emb.image.to(torch::kFloat64).norm(2, 1));
  const std::vector<double> text_norm = to_doubles(emb.text.to(torch::kFloat64).norm(2, 1));
  scores << "line\timage_path\tmismatched\tscore\tcosine_score\tlog_odds\timage_norm\ttext_norm\n";
  for (size_t i = 0; i < emb.rows.size(); ++i) {
    const auto row = static_cast<size_t>(emb.rows[i]);
    scores << manifest.lines[row] << '\t' << data::tsv_field(manifest.images[row]) << '\t'
           << (manifest.mismatched.empty() ? std::string("-")
                                           : std::to_string(manifest.mismatched[row]))
           << '\t' << json_number(model_score[i]) << '\t' << json_number(cosine_score[i]) << '\t'
           << json_number(model_log_odds[i]) << '\t' << json_number(image_norm[i]) << '\t'
           << json_number(text_norm[i]) << '\n';
  }
  halo::write_file_atomically((fs::path(out_dir) / "pair_scores.tsv").string(), scores.str());

  if (r.classification) {
    std::ostringstream bins;
    bins << "lower\tupper\tcount\tmean_confidence\taccuracy\n";
    for (const auto& b : r.classification->calibration.bins) {
      bins << b.lower << '\t' << b.upper << '\t' << b.count << '\t' << b.mean_confidence << '\t'
           << b.accuracy << '\n';
    }
    halo::write_file_atomically((fs::path(out_dir) / "reliability.tsv").string(), bins.str());
  }

  std::ostringstream ex;
  ex << "image_path\tcaption\trank\ttop_captions_and_logits...\n";
  for (const auto& e : r.examples) {
    // Absolute, so that the report finds the thumbnail from any working directory.
    ex << data::tsv_field(fs::absolute(e.image).lexically_normal().string()) << '\t'
       << data::tsv_field(e.caption) << '\t' << e.rank;
    for (const auto& [caption, logit] : e.top)
      ex << '\t' << data::tsv_field(caption) << '\t' << json_number(logit);
    ex << '\n';
  }
  halo::write_file_atomically((fs::path(out_dir) / "examples.tsv").string(), ex.str());
}

}  // namespace

std::vector<double> in_context_mismatch_score(loss::ContrastiveLoss& loss,
                                              const torch::Tensor& image, const torch::Tensor& text,
                                              int64_t chunk_rows) {
  std::vector<double> score = eval::in_context_log_odds(loss, image, text, chunk_rows);
  for (double& v : score) v = sigmoid(v);
  return score;
}

std::vector<double> in_context_log_odds(loss::ContrastiveLoss& loss, const torch::Tensor& image,
                                        const torch::Tensor& text, int64_t chunk_rows) {
  HALO_CHECK(chunk_rows >= 1, "chunk_rows must be >= 1");
  return to_doubles(loss::in_context_log_odds(loss, image, text, chunk_rows));
}

EvalResult evaluate(train::TrainedModel& m, const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  const auto start_time = std::chrono::steady_clock::now();
  data::ManifestOptions mo = m.config.data.manifest_options();
  mo.skip_bad = options.embed.skip_bad;
  // A manifest or shards (their keys stand for image paths; captions and json fields are read).
  const auto pairs = data::PairSet::open(options.manifest, mo);
  const data::Manifest* manifest = &pairs->rows();

  EvalResult r;
  r.checkpoint = m.checkpoint;
  r.manifest = options.manifest;
  r.loss = m.loss->kind();
  r.step = m.step;
  std::string classes_path = options.classes;
  const std::string beside = (fs::path(pairs->folder()) / "classes.txt").string();
  if (classes_path.empty() && fs::exists(beside)) classes_path = beside;
  HALO_CHECK(options.ood.empty() || (!manifest->labels.empty() && !classes_path.empty()),
             "--ood needs zero-shot classification on the evaluation set: manifest '",
             options.manifest, "' needs a '", mo.label_key,
             "' column and class names (classes.txt beside it, or --classes)");
  const PairEmbeddings emb = embed_pairs(m, *pairs, options.embed);
  r.pairs = static_cast<int64_t>(emb.rows.size());
  HALO_CHECK(r.pairs > 0, "no readable pair in manifest '", options.manifest, "'");
  r.skipped = emb.skipped + manifest->skipped_rows;

  // Retrieval over the clean pairs (a mismatched pair's caption is not its image's truth).
  std::vector<int64_t> keep;
  for (size_t i = 0; i < emb.rows.size(); ++i) {
    if (manifest->mismatched.empty() || !manifest->mismatched[static_cast<size_t>(emb.rows[i])])
      keep.push_back(static_cast<int64_t>(i));
  }
  const torch::Tensor index = torch::tensor(keep, torch::kInt64);
  const torch::Tensor image = emb.image.index_select(0, index).to(m.device);
  const torch::Tensor text = emb.text.index_select(0, index).to(m.device);
  r.retrieval_pairs = static_cast<int64_t>(keep.size());
  const auto i2t = loss::retrieval_ranks(*m.loss, image, text, options.chunk_rows);
  r.image_to_text = summarize_ranks(i2t);
  r.text_to_image =
      summarize_ranks(loss::retrieval_ranks(*m.loss, text, image, options.chunk_rows));

  // A few image -> text examples spread over the set, for the report.
  const int64_t n_examples = std::min<int64_t>(options.examples, r.retrieval_pairs);
  for (int64_t k = 0; k < n_examples; ++k) {
    const int64_t i = k * r.retrieval_pairs / n_examples;
    const auto row =
        static_cast<size_t>(emb.rows[static_cast<size_t>(keep[static_cast<size_t>(i)])]);
    RetrievalExample e{
        manifest->images[row], manifest->captions[row], {}, i2t[static_cast<size_t>(i)]};
    const torch::Tensor logits =
        m.loss->logits(image.slice(0, i, i + 1), text).squeeze(0).to(torch::kCPU, torch::kFloat64);
    const auto [values, best] = logits.topk(std::min<int64_t>(5, logits.size(0)));
    for (int64_t j = 0; j < best.size(0); ++j) {
      const auto best_row = static_cast<size_t>(
          emb.rows[static_cast<size_t>(keep[static_cast<size_t>(best[j].item<int64_t>())])]);
      e.top.emplace_back(manifest->captions[best_row], values[j].item<double>());
    }
    r.examples.push_back(e);
  }

  // Zero-shot classification when the manifest has labels and class names are known, over the
  // labelled pairs (a shard set may label only some samples; a manifest labels all).
  torch::Tensor centroids, labelled_image, negatives;
  std::vector<int64_t> labels, labelled;  // labelled: positions in emb.rows
  if (!manifest->labels.empty() && !classes_path.empty()) {
    const auto classes = read_lines(classes_path, "classes");
    const auto templates = options.templates.empty() ? std::vector<std::string>{"{}"}
                                                     : read_lines(options.templates, "templates");
    for (size_t i = 0; i < emb.rows.size(); ++i) {
      const auto row = static_cast<size_t>(emb.rows[i]);
      const int64_t label = manifest->labels[row];
      if (label < 0) continue;
      HALO_CHECK(label < static_cast<int64_t>(classes.size()), options.manifest, ":",
                 manifest->lines[row], ": label ", label, " but ", classes_path, " has ",
                 classes.size(), " classes");
      labels.push_back(label);
      labelled.push_back(static_cast<int64_t>(i));
    }
    HALO_CHECK(!labels.empty(), "no readable pair of '", options.manifest, "' has a label");
    r.unlabelled = static_cast<int64_t>(emb.rows.size() - labelled.size());
    labelled_image = r.unlabelled == 0
                         ? emb.image
                         : emb.image.index_select(0, torch::tensor(labelled, torch::kInt64));
    centroids = class_embeddings(m, classes, templates);
    r.classification = classify(m, labelled_image, labels, centroids, options.chunk_rows);
    if (!options.ood.empty()) {
      NegativeBank bank;
      negatives = negative_bank(m, options, classes, templates, centroids, bank);
      if (negatives.defined()) r.negatives = bank;
    }
  } else if (!options.classes.empty()) {
    HALO_FAIL("--classes given but manifest '", options.manifest, "' has no '", mo.label_key,
              "' column");
  }

  // Mismatch detection against the ground truth: the model's own pair score and the cosine.
  // The model's score in float64 from its log-odds, which keep ordering pairs whose probability
  // rounds to 1: detection ranks by them.
  const torch::Tensor log_odds =
      m.loss->mismatch_log_odds(emb.image.to(m.device), emb.text.to(m.device)).cpu();
  const std::vector<double> model_log_odds = to_doubles(log_odds);
  const std::vector<double> model_score = to_doubles(torch::sigmoid(log_odds.to(torch::kFloat64)));
  const std::vector<double> cosine_score =
      to_doubles(1.0 - torch::cosine_similarity(emb.image.to(torch::kFloat64),
                                                emb.text.to(torch::kFloat64), 1));
  if (!manifest->mismatched.empty()) {
    std::vector<int> truth;
    for (int64_t row : emb.rows) truth.push_back(manifest->mismatched[static_cast<size_t>(row)]);
    const auto positives = std::count(truth.begin(), truth.end(), 1);
    if (positives > 0 && positives < static_cast<int64_t>(truth.size())) {
      r.detection.push_back(
          detection(r.loss == "halo" ? "abstain" : r.loss, model_score, truth, &model_log_odds));
      r.detection.push_back(detection("cosine", cosine_score, truth));
      const std::vector<double> context_log_odds = eval::in_context_log_odds(
          *m.loss, emb.image.to(m.device), emb.text.to(m.device), options.chunk_rows);
      std::vector<double> context;
      for (double v : context_log_odds) context.push_back(sigmoid(v));
      r.detection.push_back(detection("in-context", context, truth, &context_log_odds));
      // How much the model's own score and the in-context score add to the cosine: AUROC
      // differences with paired bootstrap intervals (the same resampled pairs for both scores).
      const std::vector<double> cosine_log_odds =
          to_doubles(loss::cosine_log_odds(emb.image, emb.text));
      r.versus_cosine.push_back(
          {r.detection.front().name,
           paired_bootstrap_auroc_difference(model_log_odds, cosine_log_odds, truth,
                                             kBootstrapResamples, 0.95, 0)});
      r.versus_cosine.push_back(
          {"in-context", paired_bootstrap_auroc_difference(context_log_odds, cosine_log_odds, truth,
                                                           kBootstrapResamples, 0.95, 1)});
    }
  }
  // Zero-shot classification that may say "I don't know": the OOD sets against this one.
  std::vector<OodScoredSet> scored;
  if (!options.ood.empty()) {
    scored.push_back({"in-distribution",
                      {},
                      labels,
                      ood_image_scores(*m.loss, labelled_image.to(m.device), centroids,
                                       options.chunk_rows, negatives)});
    for (int64_t i : labelled) {
      scored.back().images.push_back(
          manifest->images[static_cast<size_t>(emb.rows[static_cast<size_t>(i)])]);
    }
    r.selective = selective_by_score(scored.front().scores, labels);
    for (const auto& [name, path] : options.ood) {
      const auto ood_pairs = data::PairSet::open(path, mo, data::PairSet::ShardIndex::keys);
      const data::Manifest* ood_manifest = &ood_pairs->rows();
      const PairEmbeddings ood = embed_pairs(m, *ood_pairs, options.embed);
      HALO_CHECK(!ood.rows.empty(), "no readable image in OOD manifest '", path, "' (--ood ", name,
                 "=", path, ")");
      scored.push_back({name,
                        {},
                        {},
                        ood_image_scores(*m.loss, ood.image.to(m.device), centroids,
                                         options.chunk_rows, negatives)});
      for (int64_t row : ood.rows)
        scored.back().images.push_back(ood_manifest->images[static_cast<size_t>(row)]);
      const auto detected = ood_detection(name, scored.front().scores, scored.back().scores);
      r.ood.insert(r.ood.end(), detected.begin(), detected.end());
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  if (!options.out_dir.empty()) {
    write_outputs(r, *manifest, emb, model_score, model_log_odds, cosine_score, options.out_dir);
    if (!scored.empty())
      write_ood_scores((fs::path(options.out_dir) / "ood_scores.tsv").string(), scored);
  }
  return r;
}

std::string format_eval_table(const EvalResult& r) {
  std::ostringstream o;
  char line[256];
  o << "checkpoint " << r.checkpoint << " (step " << r.step << ", loss " << r.loss << ")\n";
  o << "manifest   " << r.manifest << ": " << r.pairs << " pairs (" << r.skipped
    << " unreadable), retrieval over " << r.retrieval_pairs << " clean pairs\n\n";
  std::snprintf(line, sizeof line, "%-16s %7s %7s %7s %10s %12s\n", "retrieval", "R@1", "R@5",
                "R@10", "mean rank", "median rank");
  o << line;
  for (const auto& [name, s] :
       {std::pair<const char*, RankSummary>{"image -> text", r.image_to_text},
        {"text -> image", r.text_to_image}}) {
    std::snprintf(line, sizeof line, "%-16s %7.3f %7.3f %7.3f %10.1f %12.1f\n", name, s.r1, s.r5,
                  s.r10, s.mean_rank, s.median_rank);
    o << line;
  }
  if (r.classification) {
    const auto& c = *r.classification;
    std::snprintf(line, sizeof line,
                  "\nzero-shot classification: %lld classes, %lld images: top-1 %.3f, top-5 %.3f, "
                  "ECE %.4f (15 bins)",
                  static_cast<long long>(c.classes), static_cast<long long>(c.count), c.top1,
                  c.top5, c.calibration.ece);
    o << line;
    if (c.mean_abstain >= 0) {
      std::snprintf(line, sizeof line, ", mean abstain %.3f", c.mean_abstain);
      o << line;
    }
    if (r.unlabelled > 0) o << " (" << r.unlabelled << " unlabelled pairs left out)";
    o << "\n";
  }
  if (r.negatives) {
    o << "negatives: a bank of " << r.negatives->size << " of " << r.negatives->candidates
      << " candidates (" << r.negatives->source << "), those farthest from every class; e.g.";
    for (const auto& e : r.negatives->examples) o << " '" << e << "'";
    o << "\n";
  }
  if (!r.ood.empty()) {
    std::snprintf(line, sizeof line, "\n%-20s %-8s %7s %7s %9s\n", "OOD set", "score", "images",
                  "AUROC", "FPR@95");
    o << line;
    for (const auto& d : r.ood) {
      std::snprintf(line, sizeof line, "%-20s %-8s %7lld %7.3f %9.3f\n", d.set.c_str(),
                    d.score.c_str(), static_cast<long long>(d.images), d.auroc, d.fpr95);
      o << line;
    }
    std::snprintf(line, sizeof line, "\n%-28s %9s %9s %9s %8s\n", "selective classification",
                  "acc@50%", "acc@80%", "acc@95%", "AURC");
    o << line;
    for (const auto& s : r.selective) {
      std::snprintf(line, sizeof line, "%-28s %9.3f %9.3f %9.3f %8.4f\n", ("by " + s.score).c_str(),
                    s.result.accuracy[0], s.result.accuracy[1], s.result.accuracy[2],
                    s.result.aurc);
      o << line;
    }
  }
  if (!r.detection.empty()) {
    std::snprintf(line, sizeof line, "\n%-16s %7s %9s %11s %16s\n", "mismatch score", "AUROC",
                  "FPR@95", "mean clean", "mean mismatched");
    o << line;
    for (const auto& d : r.detection) {
      std::snprintf(line, sizeof line, "%-16s %7.3f %9.3f %11.3f %16.3f\n", d.name.c_str(), d.auroc,
                    d.fpr95, d.mean_clean, d.mean_mismatched);
      o << line;
    }
    for (const auto& [name, d] : r.versus_cosine) {
      std::snprintf(
          line, sizeof line,
          "AUROC %s - cosine: %+.4f (95%% bootstrap interval %+.4f .. %+.4f, %d resamples)\n",
          name.c_str(), d.estimate, d.lower, d.upper, kBootstrapResamples);
      o << line;
    }
  }
  return o.str();
}

std::string eval_json(const EvalResult& r) {
  auto ranks = [](const RankSummary& s) {
    return JsonObject()
        .add("r1", s.r1)
        .add("r5", s.r5)
        .add("r10", s.r10)
        .add("mean_rank", s.mean_rank)
        .add("median_rank", s.median_rank);
  };
  JsonObject j;
  j.add("checkpoint", r.checkpoint)
      .add("step", r.step)
      .add("loss", r.loss)
      .add("manifest", r.manifest);
  j.add("pairs", r.pairs).add("unreadable", r.skipped).add("retrieval_pairs", r.retrieval_pairs);
  j.add("image_to_text", ranks(r.image_to_text)).add("text_to_image", ranks(r.text_to_image));
  if (r.classification) {
    const auto& c = *r.classification;
    JsonObject cj;
    cj.add("classes", c.classes)
        .add("images", c.count)
        .add("top1", c.top1)
        .add("top5", c.top5)
        .add("ece", c.calibration.ece);
    if (c.mean_abstain >= 0) cj.add("mean_abstain", c.mean_abstain);
    std::vector<JsonObject> bins;
    for (const auto& b : c.calibration.bins) {
      bins.push_back(JsonObject()
                         .add("upper", b.upper)
                         .add("count", b.count)
                         .add("confidence", b.mean_confidence)
                         .add("accuracy", b.accuracy));
    }
    cj.add("reliability", bins);
    j.add("classification", cj);
  }
  if (r.negatives) {
    j.add("negatives", JsonObject()
                           .add("source", r.negatives->source)
                           .add("candidates", r.negatives->candidates)
                           .add("size", r.negatives->size));
  }
  if (!r.detection.empty()) {
    JsonObject dj;
    for (const auto& d : r.detection) {
      dj.add(d.name, JsonObject()
                         .add("auroc", d.auroc)
                         .add("fpr95", d.fpr95)
                         .add("mean_clean", d.mean_clean)
                         .add("mean_mismatched", d.mean_mismatched)
                         .add("median_clean", d.median_clean)
                         .add("median_mismatched", d.median_mismatched));
    }
    j.add("mismatch_detection", dj);
    JsonObject vj;
    for (const auto& [name, d] : r.versus_cosine) {
      vj.add(name, JsonObject()
                       .add("auroc_difference", d.estimate)
                       .add("lower", d.lower)
                       .add("upper", d.upper)
                       .add("resamples", static_cast<int64_t>(kBootstrapResamples)));
    }
    j.add("auroc_minus_cosine", vj);
  }
  if (!r.ood.empty()) {
    std::vector<JsonObject> ood, selective;
    for (const auto& d : r.ood) {
      ood.push_back(JsonObject()
                        .add("set", d.set)
                        .add("score", d.score)
                        .add("images", d.images)
                        .add("auroc", d.auroc)
                        .add("fpr95", d.fpr95));
    }
    for (const auto& s : r.selective) {
      selective.push_back(JsonObject()
                              .add("score", s.score)
                              .add("coverage", s.result.coverage)
                              .add("accuracy", s.result.accuracy)
                              .add("aurc", s.result.aurc));
    }
    j.add("ood_detection", ood).add("selective_classification", selective);
  }
  j.add("seconds", r.seconds);
  return j.dump(2);
}

}  // namespace halo::eval

// Reading, overriding, validating and writing the typed configuration (see config.h).
#include "train/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "loss/contrastive_loss.h"

namespace halo::train {

namespace {

template <class T, class = void>
struct is_section : std::false_type {};
template <class T>
struct is_section<T, std::void_t<decltype(&T::template visit<int>)>> : std::true_type {};

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  return node.IsSequence() ? "a list" : node.IsMap() ? "a mapping" : "nothing";
}

// Visits a section's fields, reading each from the YAML mapping and remembering which keys
// were used, so that the rest can be reported as unknown.
class Reader {
 public:
  Reader(const YAML::Node& node, std::string prefix, const std::string& source)
      : node_(node), prefix_(std::move(prefix)), source_(source) {}

  template <class T>
  void operator()(const char* key, T& field) {
    used_.insert(key);
    const YAML::Node child = node_[key];
    if (child) read(child, field, prefix_ + key);
  }

  void reject_unknown_keys() const {
    for (const auto& item : node_) {
      const std::string key = item.first.as<std::string>();
      HALO_CHECK(used_.count(key), source_, ": unknown key '", prefix_ + key, "'");
    }
  }

 private:
  template <class T>
  void read(const YAML::Node& node, T& field, const std::string& path) {
    if constexpr (is_section<T>::value) {
      HALO_CHECK(node.IsMap(), source_, ": key '", path, "' must be a mapping, got ", describe(node));
      Reader inner(node, path + ".", source_);
      field.visit(inner);
      inner.reject_unknown_keys();
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      HALO_CHECK(node.IsSequence(), source_, ": key '", path, "' must be a list of numbers, got ",
                 describe(node));
      field.clear();
      for (const auto& v : node) field.push_back(scalar<double>(v, path, "a number"));
    } else if constexpr (std::is_same_v<T, std::string>) {
      field = node.IsNull() ? std::string() : scalar<std::string>(node, path, "a string");
    } else if constexpr (std::is_same_v<T, bool>) {
      field = scalar<bool>(node, path, "true or false");
    } else if constexpr (std::is_integral_v<T>) {
      field = scalar<T>(node, path, "an integer");
    } else {
      field = scalar<T>(node, path, "a number");
    }
  }

  template <class T>
  T scalar(const YAML::Node& node, const std::string& path, const char* expected) {
    HALO_CHECK(node.IsScalar(), source_, ": key '", path, "' must be ", expected, ", got ",
               describe(node));
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      HALO_FAIL(source_, ": key '", path, "' must be ", expected, ", got ", describe(node));
    }
  }

  YAML::Node node_;
  std::string prefix_;
  const std::string& source_;
  std::set<std::string> used_;
};

class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}
  template <class T>
  void operator()(const char* key, const T& field) {
    out_ << YAML::Key << key << YAML::Value;
    if constexpr (is_section<T>::value) {
      out_ << YAML::BeginMap;
      const_cast<T&>(field).visit(*this);
      out_ << YAML::EndMap;
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      out_ << YAML::Flow << YAML::BeginSeq;
      for (double v : field) out_ << v;
      out_ << YAML::EndSeq;
    } else if constexpr (std::is_same_v<T, std::string>) {
      out_ << YAML::DoubleQuoted << field;
    } else {
      out_ << field;
    }
  }

 private:
  YAML::Emitter& out_;
};

void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  HALO_CHECK(eq != std::string::npos && eq > 0, "--set expects KEY=VALUE (e.g. train.batch_size=64), got '",
             assignment, "'");
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  YAML::Node node = root;
  std::stringstream parts(path);
  std::vector<std::string> keys;
  for (std::string key; std::getline(parts, key, '.');) {
    HALO_CHECK(!key.empty(), "--set: empty key segment in '", path, "'");
    keys.push_back(key);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node child = node[keys[i]];
    HALO_CHECK(!child || child.IsMap() || child.IsNull(), "--set ", path, ": '", keys[i],
               "' is not a section");
    node.reset(child);
  }
  YAML::Node parsed = value.empty() ? YAML::Node(std::string()) : YAML::Load(value);
  node[keys.back()] = parsed;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides,
                    const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    HALO_FAIL(source, ": not valid YAML: ", e.what());
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  HALO_CHECK(root.IsMap(), source, ": the top level must be a mapping of sections");
  for (const auto& o : overrides) apply_override(root, o);
  Config config;
  Reader reader(root, "", source);
  config.visit(reader);
  reader.reject_unknown_keys();
  config.validate();
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read config file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), overrides, path);
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer writer(out);
  const_cast<Config&>(config).visit(writer);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void Config::validate() const {
  auto one_of = [](const std::string& v, std::initializer_list<const char*> choices) {
    for (const char* c : choices) {
      if (v == c) return true;
    }
    return false;
  };
  const auto& im = model.image;
  const auto& tx = model.text;
  HALO_CHECK(model.embed_dim >= 2, "model.embed_dim must be >= 2, got ", model.embed_dim);
  HALO_CHECK(one_of(im.type, {"vit", "resnet"}), "model.image.type must be vit or resnet, got '", im.type, "'");
  HALO_CHECK(im.image_size >= 8, "model.image.image_size must be >= 8, got ", im.image_size);
  HALO_CHECK(im.width >= 4 && im.layers >= 1, "model.image.width must be >= 4 and layers >= 1");
  if (im.type == "vit") {
    HALO_CHECK(im.patch_size >= 1 && im.image_size % im.patch_size == 0, "model.image.patch_size (",
               im.patch_size, ") must divide model.image.image_size (", im.image_size, ")");
    HALO_CHECK(im.heads >= 1 && im.width % im.heads == 0, "model.image.heads (", im.heads,
               ") must divide model.image.width (", im.width, ")");
    HALO_CHECK(one_of(im.pool, {"cls", "mean"}), "model.image.pool must be cls or mean, got '", im.pool, "'");
    HALO_CHECK(im.mlp_ratio > 0, "model.image.mlp_ratio must be > 0");
  }
  HALO_CHECK(tx.context_length >= 2, "model.text.context_length must be >= 2, got ", tx.context_length);
  HALO_CHECK(tx.heads >= 1 && tx.width % tx.heads == 0, "model.text.heads (", tx.heads,
             ") must divide model.text.width (", tx.width, ")");
  HALO_CHECK(tx.layers >= 1 && tx.mlp_ratio > 0, "model.text.layers must be >= 1 and mlp_ratio > 0");

  HALO_CHECK(data.separator.size() == 1, "data.separator must be one character, got '", data.separator, "'");
  HALO_CHECK(!data.image_key.empty() && !data.caption_key.empty(), "data.image_key and data.caption_key must be set");
  HALO_CHECK(data.workers >= 1 && data.prefetch_batches >= 1, "data.workers and data.prefetch_batches must be >= 1");
  HALO_CHECK(data.mean.size() == 3 && data.std.size() == 3, "data.mean and data.std need 3 values (R, G, B)");
  for (double s : data.std) HALO_CHECK(s > 0, "data.std values must be > 0");
  HALO_CHECK(optim.temperature_lr_scale > 0, "optim.temperature_lr_scale must be > 0, got ", optim.temperature_lr_scale);
  HALO_CHECK(model.center_momentum > 0 && model.center_momentum <= 1, "model.center_momentum must be in (0, 1], got ",
             model.center_momentum);
  HALO_CHECK(data.folds == 0 || (data.folds >= 2 && data.holdout_fold >= 0 && data.holdout_fold < data.folds),
             "data.folds must be 0 (off) or >= 2 with 0 <= data.holdout_fold < data.folds, got folds ", data.folds,
             " and holdout_fold ", data.holdout_fold);
  const auto& aug = data.augment;
  HALO_CHECK(aug.crop_scale_min > 0 && aug.crop_scale_min <= aug.crop_scale_max && aug.crop_scale_max <= 1,
             "data.augment needs 0 < crop_scale_min <= crop_scale_max <= 1");

  HALO_CHECK(tokenizer.vocab_size >= 8, "tokenizer.vocab_size must be >= 8, got ", tokenizer.vocab_size);
  const auto& names = loss::contrastive_loss_names();
  HALO_CHECK(std::find(names.begin(), names.end(), loss.name) != names.end(),
             "loss.name must be halo, infonce or siglip, got '", loss.name, "'");
  HALO_CHECK(loss.label_smoothing >= 0 && loss.label_smoothing < 1, "loss.label_smoothing must be in [0, 1)");
  HALO_CHECK(!loss.distill || loss.label_smoothing > 0 || loss.name != "halo",
             "loss.distill needs loss.label_smoothing > 0");
  HALO_CHECK(one_of(loss.implementation, {"dense", "tiled", "kernel", "auto"}),
             "loss.implementation must be dense, tiled, kernel or auto, got '", loss.implementation, "'");
  HALO_CHECK(loss.temperature == "softplus" || loss.temperature == "log",
             "loss.temperature must be softplus or log, got '", loss.temperature, "'");
  HALO_CHECK(loss.radial_weight >= 0, "loss.radial_weight must be >= 0, got ", loss.radial_weight);
  HALO_CHECK(loss.sink_bootstrap >= 0 && loss.sink_bootstrap < 1, "loss.sink_bootstrap must be in [0, 1), got ",
             loss.sink_bootstrap);
  HALO_CHECK(loss.sink_bootstrap == 0 || loss.implementation == "dense" || loss.name != "halo",
             "loss.sink_bootstrap needs loss.implementation: dense (the tiled loss does not implement it)");
  HALO_CHECK(loss.sink_bootstrap_from == "model" || loss.sink_bootstrap_from == "history",
             "loss.sink_bootstrap_from must be model or history, got '", loss.sink_bootstrap_from, "'");
  HALO_CHECK(loss.sink_bootstrap_from == "model" || (loss.name != "siglip" && loss.sink_bootstrap > 0),
             "loss.sink_bootstrap_from: history needs loss.name: halo or infonce and loss.sink_bootstrap > 0");
  HALO_CHECK(loss.sink_history_fraction > 0 && loss.sink_history_fraction < 1,
             "loss.sink_history_fraction must be in (0, 1), got ", loss.sink_history_fraction);

  HALO_CHECK(optim.lr > 0 && optim.weight_decay >= 0 && optim.eps > 0, "optim.lr and optim.eps must be > 0, "
             "optim.weight_decay >= 0");
  HALO_CHECK(optim.beta1 >= 0 && optim.beta1 < 1 && optim.beta2 >= 0 && optim.beta2 < 1,
             "optim.beta1 and optim.beta2 must be in [0, 1)");
  HALO_CHECK(optim.warmup_steps >= 0 && optim.grad_clip >= 0, "optim.warmup_steps and optim.grad_clip must be >= 0");

  HALO_CHECK(train.batch_size >= 2, "train.batch_size must be >= 2, got ", train.batch_size);
  HALO_CHECK(train.epochs >= 1 && train.max_steps >= 0, "train.epochs must be >= 1 and train.max_steps >= 0");
  HALO_CHECK(loss.sink_bootstrap_from == "model" || train.pair_dynamics,
             "loss.sink_bootstrap_from: history reads the pair dynamics: it needs train.pair_dynamics: true");
  HALO_CHECK(one_of(train.precision, {"fp32", "bf16"}), "train.precision must be fp32 or bf16, got '",
             train.precision, "'");
  HALO_CHECK(train.log_every >= 1 && train.checkpoint_every >= 1 && train.keep_checkpoints >= 1,
             "train.log_every, train.checkpoint_every and train.keep_checkpoints must be >= 1");
  HALO_CHECK(!train.run_dir.empty(), "train.run_dir must be set");

  HALO_CHECK(one_of(dist.backend, {"auto", "gloo", "nccl"}), "dist.backend must be auto, gloo or nccl, got '",
             dist.backend, "'");
  HALO_CHECK(dist.rendezvous_timeout_s > 0 && dist.collective_timeout_s > 0,
             "dist.rendezvous_timeout_s and dist.collective_timeout_s must be > 0");
  HALO_CHECK(dist.bucket_mb > 0, "dist.bucket_mb must be > 0, got ", dist.bucket_mb);
}

}  // namespace halo::train

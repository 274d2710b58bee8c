// Reading, overriding and writing the typed configuration (see config.h), and the validation
// of the optim and train sections and of the combinations across sections.
#include "train/config.h"

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/json.h"

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
      HALO_CHECK(node.IsMap(), source_, ": key '", path, "' must be a mapping, got ",
                 describe(node));
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
      for (double v : field) out_ << json_number(v);
      out_ << YAML::EndSeq;
    } else if constexpr (std::is_floating_point_v<T>) {
      out_ << json_number(field);  // the shortest text that reads back as the same double (0.8)
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
  HALO_CHECK(eq != std::string::npos && eq > 0,
             "--set expects KEY=VALUE (e.g. train.batch_size=64), got '", assignment, "'");
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
  check_input_file(path, "config file");
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read config file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), overrides, path);
}

namespace {

// Every scalar (or list) of a YAML tree by its dotted key, as text.
void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) flatten(kv.second, prefix + kv.first.as<std::string>() + ".", out);
    return;
  }
  out[prefix.substr(0, prefix.size() - 1)] = node.IsScalar() ? node.Scalar() : YAML::Dump(node);
}

}  // namespace

std::vector<std::string> shape_key_differences(const Config& saved, const Config& now) {
  std::map<std::string, std::string> a, b;
  flatten(YAML::Load(to_yaml(saved)), "", a);
  flatten(YAML::Load(to_yaml(now)), "", b);
  std::vector<std::string> out;
  for (const auto& [key, value] : b) {
    const bool shapes = key.rfind("model.", 0) == 0 || key == "loss.name" ||
                        key == "loss.temperature" || key == "loss.learn_temperature";
    auto it = a.find(key);
    const std::string before = it == a.end() ? "(unset)" : it->second;
    if (shapes && before != value)
      out.push_back(key + " (checkpoint " + before + ", now " + value + ")");
  }
  return out;
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer writer(out);
  const_cast<Config&>(config).visit(writer);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void OptimConfig::validate() const {
  HALO_CHECK(lr > 0 && std::isfinite(lr) && weight_decay >= 0 && std::isfinite(weight_decay) &&
                 eps > 0 && std::isfinite(eps),
             "optim.lr and optim.eps must be > 0, optim.weight_decay >= 0 (all finite)");
  HALO_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
             "optim.beta1 and optim.beta2 must be in [0, 1)");
  HALO_CHECK(warmup_steps >= 0 && grad_clip >= 0 && std::isfinite(grad_clip),
             "optim.warmup_steps and optim.grad_clip must be >= 0");
  HALO_CHECK(temperature_lr_scale > 0 && std::isfinite(temperature_lr_scale),
             "optim.temperature_lr_scale must be > 0, got ", temperature_lr_scale);
}

void TrainConfig::validate() const {
  HALO_CHECK(batch_size >= 2, "train.batch_size must be >= 2, got ", batch_size);
  HALO_CHECK(accum_steps >= 1 && batch_size % accum_steps == 0,
             "train.accum_steps must be >= 1 and divide train.batch_size (", batch_size, "), got ",
             accum_steps);
  HALO_CHECK(epochs >= 1 && max_steps >= 0, "train.epochs must be >= 1 and train.max_steps >= 0");
  HALO_CHECK(precision == "fp32" || precision == "bf16",
             "train.precision must be fp32 or bf16, got '", precision, "'");
  HALO_CHECK(log_every >= 1 && checkpoint_every >= 1 && keep_checkpoints >= 1,
             "train.log_every, train.checkpoint_every and train.keep_checkpoints must be >= 1");
  HALO_CHECK(!run_dir.empty(), "train.run_dir must be set");
  HALO_CHECK(eval_every >= 1, "train.eval_every must be >= 1, got ", eval_every);
}

void Config::validate() const {
  model.validate();
  data.validate();
  tokenizer.validate();
  loss.validate();
  optim.validate();
  train.validate();
  dist.validate();
  // Combinations across sections.
  HALO_CHECK(!loss.bootstrap_from_history() || train.pair_dynamics,
             "loss.sink_bootstrap_from: history reads the pair dynamics: it needs "
             "train.pair_dynamics: true");
}

}  // namespace halo::train

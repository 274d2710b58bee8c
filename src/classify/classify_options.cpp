// Command line and checks of `halo-clip classify` (see classify_options.h).
#include "classify/classify_options.h"

#include <cctype>
#include <filesystem>
#include <set>

#include "common/args.h"
#include "common/error.h"

namespace halo::classify {

encoders::ResNetOptions resnet_preset(const std::string& name) {
  encoders::ResNetOptions o;
  if (name == "small") {
    o.width = 16, o.stages = 3, o.blocks_per_stage = 1, o.embed_dim = 64;
  } else if (name == "resnet18") {
    o.width = 64, o.stages = 4, o.blocks_per_stage = 2, o.embed_dim = 512;
  } else {
    HALO_FAIL("--preset must be 'small' or 'resnet18', got '", name, "'");
  }
  return o;
}

ClassifyOptions::ClassifyOptions() : model(resnet_preset("small")) {
  optim.lr = 2e-3;
  optim.weight_decay = 0.05;
}

namespace {

ArgParser make_parser() {
  ArgParser args(
      "classify",
      "Train an image classifier with cross-entropy or HALO on a labelled manifest and report, on\n"
      "the test split, accuracy and ECE (15 bins), and for each --ood manifest the AUROC and the\n"
      "FPR at 95% TPR of the out-of-distribution score (HALO: the abstain probability; CE: 1 - "
      "the\n"
      "maximum softmax probability). Writes results.json and results.txt into --out.");
  args.required("train", "FILE",
                "training manifest with a label column (e.g. halo-clip prepare fashion-mnist)")
      .required("test", "FILE", "test manifest with a label column")
      .repeated("ood", "NAME=FILE",
                "an out-of-distribution manifest (labels not needed); repeatable")
      .required("out", "DIR", "output folder: results.json, results.txt (created)")
      .option("loss", "ce|halo", "training loss and head", "halo")
      .option("preset", "NAME", "ResNet sizes: small (CPU) or resnet18 (GPU)", "small")
      .option("width", "N", "channels of the first stage (default: the preset's)")
      .option("stages", "N",
              "stages; channels double and resolution halves at each (default: the preset's)")
      .option("blocks", "N", "residual blocks per stage (default: the preset's)")
      .option("embed-dim", "D", "embedding size before the head (default: the preset's)")
      .option("image-size", "PX", "images are resized to PX x PX", "28")
      .option("epochs", "N", "passes over the training set", "1")
      .option("batch-size", "N", "images per step", "128")
      .option("lr", "LR", "AdamW peak learning rate (linear warm-up, cosine decay)", "0.002")
      .option("weight-decay", "W",
              "AdamW weight decay of the ResNet's weight matrices (the head has none)", "0.05")
      .option("warmup-steps", "N", "steps of linear warm-up", "50")
      .option("grad-clip", "G", "max global gradient norm (0: off)", "1.0")
      .option("train-limit", "N", "use only the first N training rows (0: all)", "0")
      .option("eval-limit", "N",
              "score only the first N rows of the test and each OOD manifest (0: all)", "0")
      .option("workers", "N", "image decoding threads", "2")
      .option("seed", "S", "seed of the weights, the data order and the augmentation", "0")
      .option("device", "DEV", "cpu, cuda or cuda:K", "cpu")
      .option("log-every", "N", "steps between progress lines", "50")
      .toggle("no-augment", "train without random crops and flips");
  return args;
}

OodSet parse_ood(const std::string& text) {
  const size_t eq = text.find('=');
  HALO_CHECK(
      eq != std::string::npos && eq > 0 && eq + 1 < text.size(),
      "--ood expects NAME=FILE (e.g. --ood mnist=data/prepared/mnist-test/manifest.tsv), got '",
      text, "'");
  const std::string name = text.substr(0, eq);
  for (const char c : name) {
    HALO_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_', "--ood name '",
               name, "' may hold only letters, digits, '-' and '_'");
  }
  return {name, text.substr(eq + 1)};
}

}  // namespace

std::optional<ClassifyOptions> parse_classify_args(const std::vector<std::string>& argv) {
  ArgParser args = make_parser();
  if (!args.parse(argv)) return std::nullopt;
  ClassifyOptions o;
  o.train_manifest = args.str("train");
  o.test_manifest = args.str("test");
  o.out_dir = args.str("out");
  for (const auto& text : args.all("ood")) o.ood.push_back(parse_ood(text));
  o.loss = args.str("loss");
  o.preset = args.str("preset");
  o.model = resnet_preset(o.preset);
  if (args.has("width")) o.model.width = args.integer("width");
  if (args.has("stages")) o.model.stages = args.integer("stages");
  if (args.has("blocks")) o.model.blocks_per_stage = args.integer("blocks");
  if (args.has("embed-dim")) o.model.embed_dim = args.integer("embed-dim");
  o.image_size = args.integer("image-size");
  o.augment = !args.on("no-augment");
  o.epochs = args.integer("epochs");
  o.batch_size = args.integer("batch-size");
  o.optim.lr = args.real("lr");
  o.optim.weight_decay = args.real("weight-decay");
  o.optim.warmup_steps = args.integer("warmup-steps");
  o.optim.grad_clip = args.real("grad-clip");
  o.train_limit = args.integer("train-limit");
  o.eval_limit = args.integer("eval-limit");
  o.workers = args.integer("workers");
  const int64_t seed = args.integer("seed");
  HALO_CHECK(seed >= 0, "--seed must be a non-negative integer, got ", seed);
  o.seed = static_cast<uint64_t>(seed);
  o.device = args.str("device");
  o.log_every = args.integer("log-every");
  validate(o);
  return o;
}

void validate(const ClassifyOptions& o) {
  namespace fs = std::filesystem;
  HALO_CHECK(o.loss == "ce" || o.loss == "halo", "--loss must be 'ce' or 'halo', got '", o.loss,
             "'");
  HALO_CHECK(o.model.width >= 4, "--width must be >= 4, got ", o.model.width);
  HALO_CHECK(o.model.stages >= 1, "--stages must be >= 1, got ", o.model.stages);
  HALO_CHECK(o.model.blocks_per_stage >= 1, "--blocks must be >= 1, got ",
             o.model.blocks_per_stage);
  HALO_CHECK(o.model.embed_dim >= 2, "--embed-dim must be >= 2, got ", o.model.embed_dim);
  HALO_CHECK(o.image_size >= 8, "--image-size must be >= 8, got ", o.image_size);
  HALO_CHECK(o.epochs >= 1, "--epochs must be >= 1, got ", o.epochs);
  HALO_CHECK(o.batch_size >= 2, "--batch-size must be >= 2, got ", o.batch_size);
  HALO_CHECK(o.optim.lr > 0, "--lr must be > 0, got ", o.optim.lr);
  HALO_CHECK(o.optim.weight_decay >= 0, "--weight-decay must be >= 0, got ", o.optim.weight_decay);
  HALO_CHECK(o.optim.warmup_steps >= 0, "--warmup-steps must be >= 0, got ", o.optim.warmup_steps);
  HALO_CHECK(o.optim.grad_clip >= 0, "--grad-clip must be >= 0, got ", o.optim.grad_clip);
  HALO_CHECK(o.train_limit >= 0, "--train-limit must be >= 0, got ", o.train_limit);
  HALO_CHECK(o.eval_limit >= 0, "--eval-limit must be >= 0, got ", o.eval_limit);
  HALO_CHECK(o.workers >= 1, "--workers must be >= 1, got ", o.workers);
  HALO_CHECK(o.log_every >= 1, "--log-every must be >= 1, got ", o.log_every);
  HALO_CHECK(!o.out_dir.empty(), "--out must name a folder");
  check_input_file(o.train_manifest, "--train: manifest");
  check_input_file(o.test_manifest, "--test: manifest");
  std::set<std::string> names;
  for (const auto& set : o.ood) {
    HALO_CHECK(names.insert(set.name).second, "--ood: the name '", set.name, "' is given twice");
    check_input_file(set.manifest, "--ood " + set.name + ": manifest");
  }
}

}  // namespace halo::classify

// halo-clip prepare <set>: turns a data set fetched by scripts/fetch_data.sh into OUT/manifest.tsv
// and OUT/images/ (src/data/prepare.h), optionally with a seeded fraction of swapped captions;
// `prepare shards` writes any manifest as WebDataset shards (src/data/manifest_to_shards.h).
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "data/manifest_to_shards.h"
#include "data/prepare.h"

namespace halo::cli {

namespace {

std::string usage() {
  std::string out =
      "usage: halo-clip prepare <set> --source DIR --out DIR [flags]   (halo-clip prepare <set> "
      "--help for its flags)\n\n"
      "Turns a data set fetched by scripts/fetch_data.sh into OUT/manifest.tsv (columns\n"
      "image_path, caption, mismatched, original_caption; paths relative to OUT) and the images\n"
      "under OUT/images/. --mismatch-fraction F swaps the captions of round(F * N) pairs among\n"
      "themselves (seeded by --seed) and marks them in the column `mismatched`. `prepare noise\n"
      "--manifest FILE --out DIR --fraction F` does the same to any manifest.\n\nsets:\n";
  auto line = [&](const std::string& name, const std::string& summary) {
    out += "  " + name + std::string(name.size() < 16 ? 16 - name.size() : 1, ' ') + summary + "\n";
  };
  for (const auto& [name, summary] : data::prepare_sets()) line(name, summary);
  line("emoji", "either emoji style, chosen with --style google|twitter");
  line("shards", "any manifest (TSV/CSV, its column names) as WebDataset .tar shards + sizes.json");
  line("iconify", "the Iconify icon sets rendered to PNG shards: emoji/, val/, train/ (--help)");
  return out;
}

// prepare iconify: --source DIR --out DIR.
int run_prepare_iconify(const std::vector<std::string>& argv) {
  ArgParser args(
      "prepare iconify",
      "Renders every visible icon and alias of the Iconify sets (@iconify/json, fetched by\n"
      "scripts/fetch_data.sh --only iconify) with librsvg, dark on white, as PNGs written\n"
      "straight into WebDataset shards, split by style: OUT/emoji/ (the sets of category\n"
      "Emoji: the zero-shot pool, `label` from OUT/emoji/classes.txt), OUT/val/ (held-out\n"
      "sets) and OUT/train/. Exact duplicates are collapsed within each split and evaluation\n"
      "images are removed from train. Captions: the icon's name as words, then its category.\n"
      "Also OUT/ATTRIBUTION.md, OUT/sets.tsv, OUT/skipped.tsv and OUT/prepared.json (the\n"
      "counts). A complete output of the same inputs is reported and kept. docs/data.md has\n"
      "the rules.");
  args.required("source", "DIR", "the fetched package: collections.json and json/PREFIX.json")
      .required("out", "DIR", "output folder (created)")
      .option("size", "PX", "rendered width and height in pixels", "64")
      .option("threads", "N", "render threads (default: the hardware's)")
      .option("samples-per-shard", "N", "at most N samples per shard", "10000")
      .option("limit-sets", "N",
              "small runs: only the first N sets of each split (collections.json order)")
      .option("sets", "A,B,...", "small runs: only these sets (prefixes), each in its own split")
      .repeated("decontaminate", "MANIFEST",
                "also remove from train every image of this manifest or shard pattern (resized to "
                "--size)")
      .toggle("overwrite",
              "replace an output that --out already holds (without it, such a folder is an error)");
  if (!args.parse(argv)) return 0;
  data::IconifyOptions o;
  o.source = args.str("source");
  o.out = args.str("out");
  const int64_t size = args.integer("size");
  HALO_CHECK(size >= 8 && size <= 1024, "--size must be in [8, 1024] pixels, got ", size);
  o.size = static_cast<int>(size);
  if (args.has("threads")) {
    const int64_t threads = args.integer("threads");
    HALO_CHECK(threads >= 1 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);
    o.threads = static_cast<int>(threads);
  }
  o.samples_per_shard = args.integer("samples-per-shard");
  HALO_CHECK(o.samples_per_shard >= 1, "--samples-per-shard must be >= 1, got ",
             o.samples_per_shard);
  if (args.has("limit-sets")) {
    o.limit_sets = args.integer("limit-sets");
    HALO_CHECK(o.limit_sets >= 1, "--limit-sets must be >= 1, got ", o.limit_sets);
  }
  if (args.has("sets")) {
    o.sets = split_list(args.str("sets"));
    HALO_CHECK(!o.sets.empty(), "--sets: no set named");
  }
  o.decontaminate = args.all("decontaminate");
  o.overwrite = args.on("overwrite");
  data::prepare_iconify(o);
  return 0;
}

// prepare shards: --manifest M --out DIR.
int run_prepare_shards(const std::vector<std::string>& argv) {
  ArgParser args(
      "prepare shards",
      "Writes a manifest as WebDataset shards in img2dataset's layout: OUT/00000.tar, ... with\n"
      "KEY.<image extension> (the original bytes), KEY.txt (the caption) and KEY.json\n"
      "(key, mismatched, label, manifest_line), KEY the zero-padded row number; shards are\n"
      "size-balanced, and OUT/sizes.json lists their counts. Prints the pattern that\n"
      "data.train_manifest takes.");
  args.required(
          "manifest", "FILE",
          "the manifest: TSV, CSV with --separator , or JSON Lines (.jsonl, one object per line)")
      .required("out", "DIR", "output folder for the shards and sizes.json (created)")
      .option("samples-per-shard", "N", "at most N samples per shard (img2dataset's default)",
              "10000")
      .option("separator", "C", "the manifest's field separator (tab, or one character such as ,)",
              "tab")
      .option("image-key", "NAME", "the manifest's image column", "image_path")
      .option("caption-key", "NAME", "the manifest's caption column", "caption")
      .toggle(
          "overwrite",
          "replace a shard set that --out already holds (without it, such a folder is an error)");
  if (!args.parse(argv)) return 0;
  data::ManifestOptions mo;
  const std::string given = args.str("separator");
  const std::string separator = given == "tab" || given == "\\t" ? "\t" : given;
  HALO_CHECK(separator.size() == 1, "--separator must be one character, got '", separator, "'");
  mo.separator = separator[0];
  mo.image_key = args.str("image-key");
  mo.caption_key = args.str("caption-key");
  data::ManifestToShardsOptions o;
  o.out = args.str("out");
  o.samples_per_shard = args.integer("samples-per-shard");
  o.overwrite = args.on("overwrite");
  const std::string manifest = args.str("manifest");
  const bool jsonl = manifest.size() > 6 && manifest.compare(manifest.size() - 6, 6, ".jsonl") == 0;
  data::write_manifest_as_shards(
      jsonl ? data::read_jsonl_manifest(manifest, mo) : data::read_manifest(manifest, mo), o);
  return 0;
}

bool known_set(const std::string& name) {
  if (name == "emoji") return true;
  for (const auto& entry : data::prepare_sets()) {
    if (entry.first == name) return true;
  }
  return false;
}

std::string summary_of(const std::string& set) {
  if (set == "emoji") {
    return "emoji (either art style, --style): one pair per emoji of emoji.json whose 64px image "
           "exists,\ncaptioned \"name, category, subcategory\"; both styles give the same captions "
           "in the same\norder (by sort_order). Images are copied to OUT/images/.";
  }
  if (set == "emoji-google" || set == "emoji-twitter") {
    return set + ": one pair per emoji of emoji.json (in --source) whose img/" + set.substr(6) +
           "/64 image exists,\ncaptioned \"name, category, subcategory\" (the same captions and "
           "order for both styles).\nImages are copied to OUT/images/.";
  }
  if (set == "noise") {
    return "noise: the pairs of any manifest (--manifest; TSV, or CSV by its extension) or shard "
           "set (a\n"
           "pattern such as data/cc/{00000..00099}.tar: written as a new shard set under --out, "
           "each\n"
           "sample's json carrying `mismatched` and `original_caption`), with a seeded\n"
           "--fraction of their captions swapped among themselves and marked in the column "
           "`mismatched`\n"
           "(original_caption keeps the true one), as the built-in sets do: measure mismatch "
           "detection\n"
           "(eval, filter) on your own data. Images are not copied: OUT/manifest.tsv points at "
           "them.\n"
           "A `label` column and classes.txt beside the manifest are kept.";
  }
  if (set == "tuxpaint") {
    return "tuxpaint: every stamp .png under --source whose .txt beside it starts with a caption\n"
           "(stamps without one are skipped and counted). Images are copied to OUT/images/.";
  }
  return set +
         ": reads the IDX files of --split from --source, writes OUT/images/<split>_NNNNN.png,"
         "\ncaptions each from a template with its class (chosen by --seed), and writes "
         "OUT/classes.txt\n(line i: the name of class i) and a `label` column.";
}

}  // namespace

int run_prepare(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    (argv.empty() ? std::cerr : std::cout) << usage();
    return argv.empty() ? 2 : 0;
  }
  std::string set = argv[0];
  if (set == "shards")
    return run_prepare_shards(std::vector<std::string>(argv.begin() + 1, argv.end()));
  if (set == "iconify")
    return run_prepare_iconify(std::vector<std::string>(argv.begin() + 1, argv.end()));
  HALO_CHECK(known_set(set), "unknown data set '", set, "' (see halo-clip prepare --help)");

  ArgParser args("prepare " + set, summary_of(set));
  const bool noise = set == "noise";
  if (noise) {
    args.required("manifest", "FILE|PATTERN",
                  "the manifest (or shard pattern) whose captions to swap")
        .required("out", "DIR", "output folder: manifest.tsv (and classes.txt) (created)")
        .required("fraction", "F", "fraction of pairs whose captions are swapped, in [0, 1)")
        .option("image-key", "NAME", "the manifest's image column", "image_path")
        .option("caption-key", "NAME", "the manifest's caption column", "caption")
        .toggle("overwrite",
                "shard sets: replace a shard set that --out already holds (else an error)");
  } else {
    args.required("source", "DIR", "the set's folder as fetched by scripts/fetch_data.sh")
        .required("out", "DIR", "output folder: manifest.tsv, images/ (created)")
        .option("mismatch-fraction", "F", "fraction of pairs whose captions are swapped, in [0, 1)",
                "0");
  }
  args.option("seed", "S", "seed of the mismatch choice (and caption templates)", "0")
      .option("limit", "N", "keep only the first N pairs");
  if (set == "emoji") args.required("style", "STYLE", "art style: google or twitter");
  if (set.rfind("emoji", 0) == 0) {
    args.toggle("skin-tones", "also the skin-tone variations (captioned with the tone)");
  }
  if (set == "mnist" || set == "fashion-mnist") {
    args.option("split", "SPLIT", "train (60000 images) or test (10000)", "train");
  }
  if (!args.parse(std::vector<std::string>(argv.begin() + 1, argv.end()))) return 0;

  data::PrepareOptions options;
  options.source = args.str(noise ? "manifest" : "source");
  options.out = args.str("out");
  options.mismatch_fraction = args.real(noise ? "fraction" : "mismatch-fraction");
  if (noise) {
    HALO_CHECK(options.mismatch_fraction >= 0 && options.mismatch_fraction < 1,
               "--fraction must be in [0, 1), got ", options.mismatch_fraction);
    options.image_key = args.str("image-key");
    options.caption_key = args.str("caption-key");
    options.overwrite = args.on("overwrite");
  }
  const int64_t seed = args.integer("seed");
  HALO_CHECK(seed >= 0, "--seed must be a non-negative integer, got ", seed);
  options.seed = static_cast<uint64_t>(seed);
  if (args.has("limit")) {
    options.limit = args.integer("limit");
    HALO_CHECK(options.limit > 0, "--limit must be a positive number of pairs, got ",
               options.limit);
  }
  if (set == "emoji") {
    const std::string style = args.str("style");
    HALO_CHECK(style == "google" || style == "twitter",
               "--style must be 'google' or 'twitter', got '", style, "'");
    set = "emoji-" + style;
  }
  if (set.rfind("emoji", 0) == 0) options.skin_tones = args.on("skin-tones");
  if (set == "mnist" || set == "fashion-mnist") options.split = args.str("split");
  data::prepare_dataset(set, options);
  return 0;
}

}  // namespace halo::cli

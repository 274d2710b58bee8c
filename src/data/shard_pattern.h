// Shard lists in open_clip's notation: `data/train-{00000..00099}.tar` expands to 100 paths
// (the width of the first bound is kept), `{a,b}` to alternatives, and several patterns join
// with `::`. Also the per-shard sample counts of a `sizes.json` beside the shards.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halo::data {

// True when `source` names tar shards (a pattern or a .tar path) rather than a TSV/CSV manifest.
bool is_shard_source(const std::string& source);

// The paths the pattern stands for, in order. Throws halo::Error naming the pattern for an
// unbalanced brace, an empty alternative list, a range with non-numeric or reversed bounds, or
// a pattern that expands to nothing.
std::vector<std::string> expand_shard_pattern(const std::string& pattern);

// expand_shard_pattern, then checks that every shard is a readable file: a missing one is an
// error naming it (and how many of the pattern's shards are missing).
std::vector<std::string> existing_shards(const std::string& pattern);

// The pattern with each `::` part's folder replaced by `folder` (the shard names stay): where a
// command that writes a shard set under the input's names puts it.
std::string shard_pattern_in(const std::string& pattern, const std::string& folder);

// Samples per shard from the `sizes.json` in the folder of each shard ({"name.tar": count}, as
// img2dataset and open_clip write it); -1 for a shard that no sizes.json lists.
std::vector<int64_t> shard_sizes_from_json(const std::vector<std::string>& shards);

}  // namespace halo::data

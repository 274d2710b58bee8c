// A tiny generated image-caption set for tests: coloured shapes on white ("a red circle"),
// written as PNGs with a manifest, so training and evaluation can run end to end in seconds.
#pragma once
#include <string>

namespace halo::test {

// Writes dir/img/*.png, dir/manifest.tsv with n pairs and dir/classes.txt (the four shapes);
// returns the manifest path. Columns: image_path, caption, mismatched, label (the shape). With
// mismatch_every = k > 0, every k-th pair (i % k == k - 1) gets another pair's caption and
// mismatched = 1.
std::string make_shapes_dataset(const std::string& dir, int n, int image_size = 16,
                                int mismatch_every = 0);

}  // namespace halo::test

// A tiny generated image-caption set for tests: coloured shapes on white ("a red circle"),
// written as PNGs with a manifest, so training and evaluation can run end to end in seconds.
#pragma once
#include <string>

namespace halo::test {

// Writes dir/img/*.png and dir/manifest.tsv with n pairs; returns the manifest path.
std::string make_shapes_dataset(const std::string& dir, int n, int image_size = 16);

}  // namespace halo::test

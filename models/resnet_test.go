package models

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// resnetReference builds ResNet-18 as torchvision's resnet.py does (its
// BasicBlock, _make_layer and initialisation, line for line, since
// Debian's python3-torchvision may be absent), replaces fc by 512→3 after
// torch.manual_seed(21), writes an ImageNet-layout state dict of other
// weights (fc 512→1000, as resnet18-f37072fd.pth) and prints the initial
// state dict, and the eval-mode outputs of the network after loading the
// pretrained weights but fc.
const resnetReference = `
import json, sys
import torch, torch.nn as nn

try:
    from torchvision.models import resnet18
except ImportError:
    resnet18 = None

def conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=3, stride=stride, padding=1, groups=1, bias=False, dilation=1)

def conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=1, stride=stride, bias=False)

class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)

class ResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)
    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

def detector():
    m = ResNet()
    m.fc = nn.Linear(512, 3)
    return m

out = sys.argv[1]
torch.manual_seed(21)
net = detector()
ref = {"init": {k: v.flatten().tolist() for k, v in net.state_dict().items()}}
ref["keys"] = list(net.state_dict().keys())
if resnet18 is not None:
    torch.manual_seed(21)
    tv = resnet18()
    tv.fc = nn.Linear(512, 3)
    ref["torchvision"] = all(torch.equal(a, b) for a, b in zip(tv.state_dict().values(), net.state_dict().values()))

torch.manual_seed(5)
imagenet = ResNet()
for m in imagenet.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.running_mean.normal_(0, 0.2)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.normal_(0, 0.1)
torch.save(imagenet.state_dict(), f"{out}/resnet18-imagenet.pth")
sd = {k: v for k, v in imagenet.state_dict().items() if not k.startswith("fc.")}
missing, unexpected = net.load_state_dict(sd, strict=False)
assert missing == ["fc.weight", "fc.bias"] and not unexpected, (missing, unexpected)
net.eval()
x = torch.randn(2, 3, 64, 48)
with torch.no_grad():
    ref["x"] = x.flatten().tolist()
    ref["y"] = torch.sigmoid(net(x)).flatten().tolist()
print(json.dumps(ref))
`

func TestResNet18MatchesTorchvision(t *testing.T) {
	dir := t.TempDir()
	var ref struct {
		Init        map[string][]float64
		Keys        []string
		Torchvision *bool
		X, Y        []float32
	}
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, "", resnetReference, dir)), &ref))
	if ref.Torchvision != nil {
		require.True(t, *ref.Torchvision, "the reference builds what torchvision builds")
	}

	torch.ManualSeed(21)
	s := nn.NewStore()
	defer s.Free()
	r := NewResNet18(s.Root())
	assert.Equal(t, int64(ResNet18Parameters), s.NumParameters())
	sd := s.StateDict()
	var keys []string
	for _, n := range sd {
		keys = append(keys, n.Name)
		assert.Equal(t, ref.Init[n.Name], n.Tensor.Detach().To(torch.Float64).Float64s(), "%s: initial values differ from torchvision's", n.Name)
	}
	assert.Equal(t, ref.Keys, keys, "torchvision's keys, in its order")

	c, err := ReadCheckpoint(filepath.Join(dir, "resnet18-imagenet.pth"))
	require.NoError(t, err)
	pretrained, err := nn.NamedFromHost(c.StateDict)
	require.NoError(t, err)
	fc := s.NamedParameters()[len(s.NamedParameters())-2].Tensor.Detach().Clone()
	require.NoError(t, LoadPretrainedResNet18(s, pretrained))
	weight, _ := s.Lookup("fc.weight")
	assert.Equal(t, fc.Float32s(), weight.Detach().Float32s(), "the classifier keeps its weights")
	s.Eval()
	var y []float32
	torch.InferenceMode(func() { y = r.Detect(torch.FromSlice(ref.X, 2, 3, 64, 48)).Float32s() })
	require.Len(t, y, len(ref.Y))
	for i := range y {
		assert.InDelta(t, ref.Y[i], y[i], 1e-4, "probability %d", i)
	}

	// What does not fit is refused, all of it in one error, and nothing
	// is loaded.
	// (A state dict of other statistics than those loaded above.)
	stats, _ := s.Lookup("layer1.0.bn1.running_mean")
	torch.NoGrad(func() { stats.FillInPlace(0.25) })
	before := stats.Detach().Clone()
	var bad []nn.Named
	for _, n := range pretrained {
		switch n.Name {
		case "layer4.1.bn2.running_var":
			continue
		case "conv1.weight":
			n.Tensor = torch.Zeros([]int64{64, 1, 7, 7}, torch.Float32CPU)
		}
		bad = append(bad, n)
	}
	bad = append(bad, nn.Named{Name: "layer5.0.conv1.weight", Tensor: torch.Zeros([]int64{1}, torch.Float32CPU)})
	err = LoadPretrainedResNet18(s, bad)
	require.Error(t, err)
	for _, want := range []string{"pretrained ResNet-18: ", `"layer4.1.bn2.running_var"`, `"layer5.0.conv1.weight"`, "conv1.weight"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "fc.", "the classifier is not part of the check")
	assert.Equal(t, before.Float32s(), stats.Detach().Float32s(), "nothing loaded")
}

// TestResNet18Model: New builds the detector as a Model that detects
// only; its prediction marks segmentation absent and leaves the labels
// alone; the segmentation networks can be restricted to one task.
func TestResNet18Model(t *testing.T) {
	torch.ManualSeed(3)
	m, err := New(NameResNet18)
	require.NoError(t, err)
	defer m.Free()
	assert.EqualValues(t, ResNet18Parameters, m.NumParameters())
	assert.Equal(t, oct.Detection, m.Tasks())
	assert.Equal(t, oct.Detection, Outputs(NameResNet18))
	m.Eval()
	const n, h, w = 2, 64, 32
	images := torch.Randn([]int64{n, 3, h, w}, torch.Float32CPU)
	defer images.Free()
	seg, det, err := m.Forward(images)
	require.NoError(t, err)
	assert.Nil(t, seg)
	assert.Equal(t, []int64{n, 3}, det.Shape())
	want := det.Float32s()
	det.Free()

	p := NewPrediction(n, h, w, true)
	p.Labels[0] = 9 // left alone
	require.NoError(t, m.PredictInto(p, 0, images.Float32s(), n))
	assert.Equal(t, oct.Segmentation, p.Absent)
	assert.InDeltaSlice(t, want, p.Detections, 1e-6)
	assert.EqualValues(t, 9, p.Labels[0])

	assert.ErrorContains(t, m.SetTasks(oct.BothTasks), "resnet18 cannot do segmentation and detection: its outputs are for detection")
	u, err := New(NameUNet)
	require.NoError(t, err)
	defer u.Free()
	require.NoError(t, u.SetTasks(oct.Segmentation))
	u.Eval()
	q := NewPrediction(n, h, w, false)
	require.NoError(t, u.PredictInto(q, 0, images.Float32s(), n))
	assert.Equal(t, oct.Detection, q.Absent)
	assert.Equal(t, make([]float32, n*3), q.Detections)
}

"""F^SR is, for every shipped network, exactly what its output convolution receives (one mechanism for all)."""
import pytest
import torch

import stdsr  # noqa: F401  (patches torchvision, registers the archs)
from basicsr.archs import build_network
from stdsr.distill.feature_hooks import FeatureRecorder, fsr_tap, stack_frames

# every network the option files ship, at sizes small enough for a CPU test
NETWORKS = {
    'VESPCN': {'type': 'VESPCN', 'num_frame': 3, 'num_feat': 8, 'num_block': 1, 'num_feat_hr': 4, 'num_feat_flow': 4},
    'VSRNet': {'type': 'VSRNet', 'num_frame': 3, 'num_feat': 8, 'num_feat_hr': 4},
    'FastDVDnetSR': {'type': 'FastDVDnetSR', 'num_frame': 3, 'num_feat': 4, 'num_feat_hr': 4},
    'EDVR': {'type': 'EDVR', 'num_feat': 8, 'num_frame': 3, 'deformable_groups': 1, 'num_extract_block': 1,
             'num_reconstruct_block': 1, 'center_frame_idx': None, 'hr_in': False, 'with_predeblur': False,
             'with_tsa': True},
    'BasicVSR': {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None},
}


class ReceivedByOutputConv:
    """Wraps conv_last.forward to keep what it actually gets, independently of the recorder's hooks."""

    def __init__(self, conv):
        self.calls = []
        self._forward = conv.forward
        conv.forward = self

    def __call__(self, x):
        self.calls.append(x.detach().clone())
        return self._forward(x)


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_fsr_tap_is_the_input_of_the_output_conv(name):
    torch.manual_seed(0)
    net = build_network(dict(NETWORKS[name])).eval()
    tap = fsr_tap(net)
    assert tap == 'conv_last:input' and net.conv_last.out_channels == 3
    received = ReceivedByOutputConv(net.conv_last)
    frames = 3
    x = torch.rand(2, frames, 3, 64, 64)  # SpyNet (BasicVSR) needs >= 64 px
    with torch.no_grad(), FeatureRecorder(net, [tap], detach=True) as rec:
        out = net(x)
    recorded = rec.records[tap]
    assert len(recorded) == len(received.calls) >= 1
    for got, expected in zip(recorded, received.calls):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # HR resolution, and the same values whatever activation (in place or not) precedes conv_last
    assert recorded[0].shape[-2:] == out.shape[-2:]
    if name == 'BasicVSR':  # recurrent: one call per frame
        assert stack_frames(recorded, 2, frames).shape[:2] == (2, frames)


def test_output_tap_still_records_outputs_and_unknown_side_is_an_error():
    net = build_network(dict(NETWORKS['VESPCN'])).eval()
    x = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad(), FeatureRecorder(net, ['conv_hr', 'conv_hr:output', 'conv_last:input']) as rec:
        net(x)
    pre_relu = rec.records['conv_hr'][0]
    torch.testing.assert_close(rec.records['conv_hr:output'][0], pre_relu)
    torch.testing.assert_close(rec.records['conv_last:input'][0], torch.relu(pre_relu))
    with pytest.raises(ValueError, match='conv_last:inptu'):
        FeatureRecorder(net, ['conv_last:inptu'])

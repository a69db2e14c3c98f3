"""stdsr.distill.teacher_check and scripts/check_teacher.py on the tiny rendered demo clips (CPU, seconds)."""
import pytest
import torch
from torch import nn

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.archs import build_network
from e2e_helpers import DEMO_OPTIONS, load_script
from stdsr.data.generic_video_test_dataset import GenericVideoTestDataset
from stdsr.distill.teacher_check import (TeacherCheckError, bicubic_clip, judge, score_teacher,
                                        teacher_check_options)
from stdsr.config.options import OptionError, load_yaml


class BicubicCentre(nn.Module):
    """A sliding-window 'teacher' that returns exactly the check's bicubic of its centre frame."""

    def forward(self, x):
        return bicubic_clip(x[:, x.shape[1] // 2], 4)


class Gray(nn.Module):
    """A teacher that learned nothing: mid-gray frames."""

    def forward(self, x):
        return torch.full_like(bicubic_clip(x[:, 0], 4), 0.5)


class BicubicRecurrent(nn.Module):
    def forward(self, x):
        b, n = x.shape[:2]
        return bicubic_clip(x.flatten(0, 1), 4).view(b, n, *x.shape[2:3], x.shape[3] * 4, x.shape[4] * 4)


@pytest.fixture(scope='module')
def demo_val(tiny_demo_root):
    return GenericVideoTestDataset({'name': 'demo_test', 'phase': 'val', 'scale': 4, 'io_backend': {'type': 'disk'},
                                    'dataroot_gt': str(tiny_demo_root / 'test/GT'),
                                    'dataroot_lq': str(tiny_demo_root / 'test/BIx4')})


def test_a_teacher_as_good_as_bicubic_passes_sliding_and_recurrent(demo_val):
    for net, mode, window in ((BicubicCentre(), 'sliding', 5), (BicubicRecurrent(), 'recurrent', None)):
        score = score_teacher(net, demo_val, mode, window, scale=4)
        assert len(score.per_clip) == len(demo_val) == 2
        assert score.teacher_psnr == pytest.approx(score.bicubic_psnr, abs=1e-6)
        assert 20 < score.bicubic_psnr < 50  # real rendered frames, not a degenerate set
        assert judge(score).startswith('teacher check on validation (2 clip(s)): teacher ')


def test_a_teacher_worse_than_bicubic_is_a_one_line_error_unless_allowed(demo_val):
    score = score_teacher(Gray(), demo_val, 'sliding', 5, scale=4, max_clips=1)
    assert len(score.per_clip) == 1 and score.teacher_psnr < score.bicubic_psnr - 3
    with pytest.raises(TeacherCheckError, match='worse than bicubic') as err:
        judge(score, dataset_name='demo_test')
    message = str(err.value)
    assert '\n' not in message and f'{score.teacher_psnr:.2f} dB' in message and 'allow_worse_than_bicubic' in message
    assert isinstance(err.value, OptionError)
    assert 'allowed by the options' in judge(score, allow_worse_than_bicubic=True)


def test_a_teacher_of_the_wrong_scale_is_named(demo_val):
    class Times2(nn.Module):
        def forward(self, x):
            return bicubic_clip(x[:, 0], 2)

    with pytest.raises(OptionError, match='scale'):
        score_teacher(Times2(), demo_val, 'sliding', 3, scale=4, max_clips=1)


def test_options_are_checked():
    assert teacher_check_options(None) == {'enabled': True, 'allow_worse_than_bicubic': False, 'max_clips': None,
                                           'crop_border': 0}
    assert teacher_check_options({'max_clips': 2})['max_clips'] == 2
    with pytest.raises(OptionError, match="did you mean 'allow_worse_than_bicubic'"):
        teacher_check_options({'allow_worse_than_bicubc': True})
    with pytest.raises(OptionError, match='must be true or false'):
        teacher_check_options({'enabled': 'yes'})
    with pytest.raises(OptionError, match='non-negative integer'):
        teacher_check_options({'max_clips': -1})


def test_script_scores_the_run_teacher_from_its_option_file(tiny_demo_root, tmp_path, capsys):
    """The demo STD run with an untrained (random) teacher: an error, then a pass when allowed."""
    opt_file = DEMO_OPTIONS / 'train_EDVRS_STD_demo.yml'
    torch.manual_seed(0)
    ckpt = tmp_path / 'net_t.pth'
    torch.save({'params': build_network(dict(load_yaml(str(opt_file))['network_t'])).state_dict()}, ckpt)
    args = ['-opt', str(opt_file), '--device', 'cpu', '--max-clips', '1', '--force_yml',
            f'path:pretrain_network_t={ckpt}', f'datasets:val:dataroot_gt={tiny_demo_root}/test/GT',
            f'datasets:val:dataroot_lq={tiny_demo_root}/test/BIx4']
    script = load_script('check_teacher')
    with pytest.raises(SystemExit) as exc:
        script.main(args)
    assert str(exc.value).startswith('check_teacher: error: teacher check on demo_test (1 clip(s))')
    assert script.main(args + ['--allow-worse-than-bicubic']) == 0
    assert 'WORSE than bicubic, allowed' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='no such file'):
        script.main(args[:-3] + ['path:pretrain_network_t=/nonexistent.pth'] + args[-2:])

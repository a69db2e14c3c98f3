"""Helpers for end-to-end tests of the entry points: tiny networks and runs on the tiny demo set."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch import nn as nn

import stdsr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_OPTIONS = REPO_ROOT / 'options' / 'train' / 'STD' / 'demo'


def load_script(relative_path):
    """The package module behind ``scripts/<path>.py`` (its ``main`` is what the script calls)."""
    return importlib.import_module('stdsr.tools.' + relative_path.replace('/', '.'))


def tiny_edvr_overrides(net_key='network_g', num_feat=8):
    """--force_yml entries that shrink an EDVR to a few thousand parameters."""
    return [
        f'{net_key}:num_feat={num_feat}', f'{net_key}:deformable_groups=1', f'{net_key}:num_extract_block=1',
        f'{net_key}:num_reconstruct_block=1'
    ]


def tiny_run_overrides(demo_root, work_dir, total_iter, name):
    """--force_yml entries for a fast run on the tiny demo set, writing under ``work_dir``."""
    return [
        f'name={name}', f'path:experiments_root={work_dir}/experiments/{name}', f'train:total_iter={total_iter}',
        f'train:scheduler:periods=[{total_iter}]', f'datasets:train:dataroot_gt={demo_root}/train/GT',
        f'datasets:train:dataroot_lq={demo_root}/train/BIx4',
        f'datasets:train:meta_info_file={demo_root}/meta_info_demo_train.txt', 'datasets:train:io_backend={type: disk}',
        'datasets:train:num_worker_per_gpu=0', 'datasets:train:persistent_workers=false', 'datasets:train:gt_size=32',
        'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_frame=3', 'datasets:train:dataset_enlarge_ratio=4',
        f'datasets:val:dataroot_gt={demo_root}/test/GT', f'datasets:val:dataroot_lq={demo_root}/test/BIx4',
        'logger:print_freq=1'
    ]


def run_module(module, args, cwd, nproc=None, timeout=300):
    """Run ``python -m module args`` (or under torchrun with ``nproc`` processes); return the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1' if nproc else os.environ.get('OMP_NUM_THREADS',
                                                                                                   '2'))
    if nproc:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', '-m', module]
        args = list(args) + ['--launcher', 'pytorch']
    else:
        cmd = [sys.executable, '-m', module]
    proc = subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{module} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc


def read_train_log(experiment_root):
    """Text of every train log in an experiment folder, oldest first."""
    logs = sorted(Path(experiment_root).glob('train_*.log'))
    return '\n'.join(p.read_text() for p in logs)


def logged_iters(log_text):
    return [int(m.replace(',', '')) for m in re.findall(r'iter:\s*([\d,]+), lr', log_text)]


def logged_losses(log_text, name):
    return [float(v) for v in re.findall(rf'{name}: ([-+\d.e]+)', log_text)]


def build_training_model(opt_file, force, root):
    """A training model built in-process exactly as ``stdsr.train`` builds it (no process group), seed 0."""
    import torch
    from basicsr.models import build_model
    from stdsr.runtime.dist import init_dist_from_options
    from stdsr.config.options import parse_options
    opt, _ = parse_options(['-opt', str(opt_file), '--force_yml', *force], is_train=True, root_path=str(root))
    init_dist_from_options(opt, 'none')
    torch.manual_seed(0)
    return build_model(opt)


def first_batch(model, batch_size=2):
    """The first (unshuffled) batch of the model's training set."""
    import torch
    from basicsr.data import build_dataset
    dataset = build_dataset(model.opt['datasets']['train'])
    return next(iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size)))


def textured(height, width, shift_x=0.0, shift_y=0.0, seed=0):
    """Smooth random texture sampled at a sub-pixel shift (uint8 BGR), for flow and metric tests."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (height + 16, width + 16, 3)).astype(np.float32), (0, 0), 2.0)
    mat = np.float32([[1, 0, 8 + shift_x], [0, 1, 8 + shift_y]])
    img = cv2.warpAffine(base, mat, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return np.clip(np.round((img - img.min()) / (img.max() - img.min()) * 255), 0, 255).astype(np.uint8)


@ARCH_REGISTRY.register()
class BenchTemporalRFNet(nn.Module):
    """A clip-in, clip-out ("recurrent"-type) x4 net whose frame t sees only frames t-radius..t+radius.

    The temporal conv zero-pads the clip ends, so frames near a chunk border differ from whole-clip inference
    unless the chunk carries ``radius`` real context frames there: exactly what chunked inference must handle.
    """

    def __init__(self, radius=2, num_feat=4):
        super().__init__()
        self.temporal = nn.Conv3d(3, num_feat, (2 * radius + 1, 3, 3), padding=(radius, 1, 1))
        self.up = nn.Sequential(nn.Conv2d(num_feat, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))
        self.conv_hr = nn.Conv2d(3, 4, 3, 1, 1)
        self.conv_last = nn.Conv2d(4, 3, 3, 1, 1)

    def forward(self, x):
        feat = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        outs = []
        for i in range(x.shape[1]):
            hr = self.up(feat[:, i])
            outs.append(self.conv_last(torch.relu(self.conv_hr(hr))) + hr)
        return torch.stack(outs, dim=1)


def tiny_vsrnet_opt(scale=4, num_frame=3):
    return {'type': 'VSRNet', 'num_frame': num_frame, 'num_feat': 6, 'num_feat_hr': 4, 'scale': scale,
            'kernel_sizes': [3, 3, 3], 'residual': True}


def stand_in_for_trained(net, std=0.1):
    """Random weights in output convs that start at zero (the residual students start exactly at bicubic), so an
    untrained net stands in for a trained one: its output depends on its weights and differs between seeds."""
    with torch.no_grad():
        for module in net.modules():
            if getattr(module, 'weight', None) is not None and module.weight.dim() == 4 and not module.weight.any():
                module.weight.normal_(0, std)
                if module.bias is not None:
                    module.bias.normal_(0, std / 10)
    return net


def save_net(path, net_opt, seed, keys=('params', )):
    torch.manual_seed(seed)
    net = stand_in_for_trained(build_network(net_opt))
    torch.save({key: net.state_dict() for key in keys}, path)
    return net


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def option_file(path, net_opt, ckpt=None, name='tiny', experiments_root=None):
    opt = {'name': name, 'model_type': 'ClipVSRModel', 'scale': net_opt.get('scale', 4), 'num_gpu': 0,
           'network_g': net_opt, 'path': {'pretrain_network_g': ckpt}}
    if experiments_root:
        opt['path']['experiments_root'] = str(experiments_root)
    return write_yaml(path, opt)

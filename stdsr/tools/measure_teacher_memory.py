"""Peak memory of a frozen teacher's forward at the training crop, measured on a few windows and extrapolated.

During distillation the teacher runs under ``torch.no_grad`` on every window of every clip of the batch at
once (B x N windows of ``num_frame`` LR frames), and its F^SR (``conv_hr`` output) is kept for the losses.
This script measures the tensor peak of that forward for 1 and 2 windows (the teacher's weights are not
counted), takes the per-window slope and extrapolates to one training sample (N windows) and one GPU's batch.
On CPU the peak is the running sum of torch.profiler's allocation events; on CUDA ``max_memory_allocated``.
Weights are random (memory does not depend on them).

    python scripts/measure_teacher_memory.py -opt options/train/STD/zoo/train_VESPCN_STD_x4_Vimeo90K_EDVRL.yml
"""
import argparse
import sys

import torch

import stdsr  # noqa: F401  (registers archs before basicsr builds them)
from basicsr.archs import build_network
from stdsr.archs.clip_runner import temporal_mode
from stdsr.config.options import OptionError, load_yaml
from stdsr.tools.profiling.training import StepMemory

MIB = float(1 << 20)


def forward_peak(net, windows, num_frame, lr_size, device, tap='conv_hr'):
    """Tensor peak (bytes) of one no-grad forward of ``windows`` windows, keeping ``tap``'s outputs like a hook."""
    kept = []
    handle = dict(net.named_modules())[tap].register_forward_hook(lambda m, i, o: kept.append(o))
    x = torch.rand(windows, num_frame, 3, lr_size, lr_size, device=device)
    try:
        with torch.no_grad():
            result = StepMemory(device).measure(lambda: net(x))
    finally:
        handle.remove()
    return result['tensor_peak_bytes']


def measure(opt, net_key='network_t', device='cpu', windows=(1, 2), tap='conv_hr', log=print):
    """{'per_window', 'fixed', 'per_sample', 'per_gpu_batch'} in bytes, from the option file's own crop and N."""
    mode, window = temporal_mode(opt, net_key)
    if mode != 'sliding':
        raise OptionError(f'{net_key} is recurrent; this script extrapolates over sliding windows only')
    train = opt['datasets']['train']
    lr_size = train['gt_size'] // opt['scale']
    clip_len, batch = train['num_frame'], train['batch_size_per_gpu']
    net = build_network(dict(opt[net_key])).to(device).eval()
    peaks = {w: forward_peak(net, w, window, lr_size, device, tap) for w in windows}
    for w, p in peaks.items():
        log(f'{net_key}: {w} window(s) of {window}x3x{lr_size}x{lr_size}: peak {p / MIB:.0f} MiB')
    (w1, p1), (w2, p2) = sorted(peaks.items())[:2]
    per_window = (p2 - p1) / (w2 - w1)
    fixed = p1 - per_window * w1
    return {'per_window': per_window, 'fixed': fixed, 'per_sample': fixed + per_window * clip_len,
            'per_gpu_batch': fixed + per_window * clip_len * batch, 'clip_len': clip_len, 'batch': batch,
            'lr_size': lr_size, 'window': window}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True)
    parser.add_argument('--net', default='network_t')
    parser.add_argument('--tap', default='conv_hr', help='module whose output the distillation keeps')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        r = measure(load_yaml(args.opt), args.net, args.device, tap=args.tap)
    except (OptionError, KeyError) as err:
        sys.exit(f'measure_teacher_memory: error: {err}')
    print(f"per window {r['per_window'] / MIB:.0f} MiB + {max(r['fixed'], 0) / MIB:.0f} MiB fixed -> one sample "
          f"({r['clip_len']} windows) {r['per_sample'] / MIB:.0f} MiB, one GPU's batch of {r['batch']} "
          f"{r['per_gpu_batch'] / MIB:.0f} MiB (extrapolated)")
    return 0

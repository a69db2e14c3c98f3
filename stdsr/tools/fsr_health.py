"""``scripts/fsr_health.py``: is a run's F^SR alive, checkpoint by checkpoint (library:
:mod:`stdsr.tools.diagnostics.fsr_health`)?

For a run the comparison harness flagged as on its bicubic plateau: the share of F^SR units above zero, the channels
that never fire, the map's spread and how far SR is from bicubic, for every checkpoint the run saved. Dead features
(0 % above zero) cannot learn again; a live map with SR at bicubic points at the output conv instead.

Example (a FastDVDnet-SR run of the PAN study, its pre-activation ``conv_hr``, on one validation clip)::

    python scripts/fsr_health.py --arch-opt options/train/STD/pan/train_FastDVDnetSRS_KD_overhaul_PAN.yml \\
        --models experiments/pan_compare_fastdvdnet/runs/Overhaul_seed1_iter3200/train/models \\
        --lq datasets/demo/val/BIx4/bikes_000 --max-frames 5 --layer conv_hr

``--json FILE`` also writes the numbers (under a temporary name, then renamed).
"""
import argparse
from os import path as osp

import torch

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision, registers archs)
from stdsr.errors import VisualizationError
from stdsr.inference.model_loading import model_from_ckpt, resolve_device
from stdsr.tools.diagnostics.fsr_health import markdown_table, measure, run_checkpoints
from stdsr.tools.figures.attention import parse_indices, read_folder
from stdsr.utils.atomic_files import write_json_atomic
from stdsr.utils.cli import run_cli
from stdsr.utils.frames import frames_to_clip
from stdsr.utils.output_paths import check_output_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch-opt', required=True, metavar='FILE.yml',
                        help='option file of the run (its network_g), or just a network section')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--models', help="a run's models folder: every net_g_<iter>.pth in order, net_g_latest last")
    source.add_argument('--ckpt', action='append', help='checkpoint(s), in the order given')
    parser.add_argument('--lq', required=True, help='folder of one LR clip\'s frames')
    parser.add_argument('--max-frames', type=int, help='use only the first frames of the clip')
    parser.add_argument('--frames', help='comma-separated frame indices (default: every frame read)')
    parser.add_argument('--layer', help='tap to read (default: F^SR, conv_last:input); e.g. conv_hr (pre-ReLU)')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--json', help='also write the numbers to this JSON file')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        raise VisualizationError(f'--max-frames must be >= 1, got {args.max_frames}')
    if args.json:
        check_output_file(args.json, '--json')
        if osp.exists(args.json) and not args.overwrite:
            raise VisualizationError(f'--json {args.json} exists; pass --overwrite to replace it')
    checkpoints = run_checkpoints(args.models) if args.models else args.ckpt
    frames, _ = read_folder(args.lq, 'LQ', args.max_frames)
    lq = frames_to_clip(frames)
    indices = parse_indices(args.frames, lq.shape[1]) if args.frames else list(range(lq.shape[1]))
    device = resolve_device(args.device)
    rows, layer = [], args.layer
    for ckpt in checkpoints:
        model = model_from_ckpt(ckpt, args.arch_opt, device=device)
        layer = args.layer or model.fsr_tap
        rows.append(measure(model, ckpt, lq, indices, layer))
    print(markdown_table(rows, layer), end='')
    if args.json:
        write_json_atomic(args.json, {'arch_opt': args.arch_opt, 'lq': args.lq, 'frames': indices, 'layer': layer,
                                      'checkpoints': [r.as_dict() for r in rows]})
    return 0


def cli(argv=None):
    with torch.inference_mode():
        return run_cli('fsr_health', main, argv)

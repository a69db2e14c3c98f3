"""Profile the networks of option files (or inline network sections): parameters, FLOPs, runtime per output
frame and the F^SR tap, as one table. ``scripts/profile_models.py`` is the command line over :func:`run`.

Every option file and network key is checked before anything runs, and the ``--output`` (markdown) file's folder before
anything is measured; the table is written under a temporary name and renamed.

Command line (``scripts/profile_models.py``):

Parameters, FLOPs and runtime per output frame, and the F^SR tap, of the networks of option files.

Examples::

    python scripts/profile_models.py -opt options/train/STD/students/demo/train_VSRNet_STD_demo.yml
    python scripts/profile_models.py -opt A.yml B.yml:network_t --net network_g --device cpu --repeats 5
    python scripts/profile_models.py --arch "{type: BasicVSR, num_feat: 64, num_block: 30, spynet_path: ~}"

The command line over :mod:`stdsr.tools.profile_models`. ``-opt FILE[:network_x]`` takes the network key
after a colon, else every key of ``--net``. ``--arch`` takes inline YAML network sections. Every row is per output
frame: a sliding network reads its own window (``num_frame``) and returns 1 frame; a recurrent one reads ``t``
frames of ``--shape`` and returns t.
"""
import os
import platform
from os import path as osp

import torch

from stdsr.runtime.device import resolve_device
from stdsr.utils.atomic_files import write_text_atomic
from stdsr.config.yaml_reader import read_yaml_text
from stdsr.utils.output_paths import check_output_file
from stdsr.tools.profiling.network import ProfileError, format_table, load_network_opt, profile_network
import argparse
import sys
from stdsr.utils.cli import run_cli


def split_opt_entry(entry, default_keys):
    """``FILE.yml:network_t`` -> (FILE.yml, [network_t]); a plain FILE keeps ``default_keys``."""
    path, sep, key = entry.rpartition(':')
    if sep and key.startswith('network_'):
        return path, [key]
    return entry, list(default_keys)


def collect_jobs(args):
    """[(label, source, arch section, net key, whole option dict or None)] in command-line order."""
    jobs = []
    for entry in args.opt:
        path, keys = split_opt_entry(entry, args.net)
        for key in keys:
            opt, arch = load_network_opt(path, key)
            jobs.append((f"{opt.get('name', osp.basename(path))} ({key})", f'{osp.basename(path)}:{key}', arch, key,
                         opt))
    for text in args.arch:
        arch = read_yaml_text(text, f'--arch {text!r}', ProfileError)
        if not isinstance(arch, dict) or 'type' not in arch:
            raise ProfileError(f"--arch {text!r}: expected a mapping with a 'type' key")
        jobs.append((arch['type'], '--arch', arch, 'network_g', None))
    if not jobs:
        raise ProfileError('nothing to profile: give -opt FILE.yml and/or --arch YAML')
    if args.labels is not None:
        if len(args.labels) != len(jobs):
            raise ProfileError(f'--labels has {len(args.labels)} entries for {len(jobs)} networks')
        jobs = [(label, *job[1:]) for label, job in zip(args.labels, jobs)]
    return jobs


def describe_setup(args, device, load_before=None):
    """One line saying where and how the numbers were measured."""
    if device == 'cuda':
        where = torch.cuda.get_device_name(0)
    else:
        where = f'CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores), ' \
                f'{torch.get_num_threads()} torch thread(s)'
        if load_before is not None:  # other processes inflate CPU timings: say how busy the machine was
            where += f', 1-min load average {load_before:.1f} before the run'
    t, c, h, w = args.shape
    return (f'Device: {where}; torch {torch.__version__}; input t×c×h×w = {t}×{c}×{h}×{w} (batch 1, '
            f'sliding nets read their own window); runtime = median of {args.repeats} forward passes after '
            f'{args.warmup} warm-up, no grad, per output frame.')


def run(args):
    """Profile every network of ``args``; prints the table and setup line, writes ``args.markdown`` if given."""
    load_before = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    if args.markdown:
        if osp.exists(args.markdown) and not args.overwrite:
            raise ProfileError(f'--output {args.markdown} exists; pass --overwrite to replace it')
        check_output_file(args.markdown, '--output file')
    jobs = collect_jobs(args)  # every file and key is checked before anything runs
    profiles = []
    for label, source, arch, key, opt in jobs:
        torch.manual_seed(args.seed)
        profiles.append(
            profile_network(arch, tuple(args.shape), device, args.repeats, args.warmup, args.tap, key, opt,
                            label=label, source=source))
    table = format_table(profiles)
    setup = describe_setup(args, device, load_before)
    print(table)
    print(setup)
    if args.markdown:
        write_text_atomic(args.markdown, f'{table}\n\n{setup}\n')  # never half a table in place
    return profiles


# ---------------------------------------------------------------------------------------------------- command line
def build_parser():
    parser = argparse.ArgumentParser(description='Profile VSR networks per output frame.')
    parser.add_argument('-opt', nargs='+', default=[], metavar='FILE[:NET]', help='option file(s)')
    parser.add_argument('--net', nargs='+', default=['network_g'], help='network key(s) of every option file')
    parser.add_argument('--arch', nargs='+', default=[], metavar='YAML', help='inline network section(s)')
    parser.add_argument('--labels', nargs='+', default=None, help='row labels, one per network, in order')
    parser.add_argument('--shape', nargs=4, type=int, default=[5, 3, 64, 64], metavar=('T', 'C', 'H', 'W'),
                        help='LR input (recurrent: t frames -> t outputs; sliding: its own window -> 1 output)')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'auto'], default='auto')
    parser.add_argument('--repeats', type=int, default=10, help='timed forward passes (median is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed forward passes first')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default); 1 gives stable timings on a busy machine')
    parser.add_argument('--tap', nargs='+', default=None, help='F^SR module path(s) for every network')
    parser.add_argument('--output', '--markdown', dest='markdown', default=None, metavar='FILE',
                        help='also write the table to FILE (markdown)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --output file')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def main(argv=None):
    """Exit status: 0, or 2 with one ``profile_models: error: ...`` line for bad input."""
    def profile(arguments):
        run(build_parser().parse_args(arguments))

    return run_cli('profile_models', profile, argv)

"""Profile the networks of option files (or inline network sections): parameters, FLOPs, runtime per output
frame and the F^SR tap, as one table. ``scripts/profile_models.py`` is the command line over :func:`run`.

Every option file and network key is checked before anything runs, and the ``--output`` (markdown) file's folder before
anything is measured; the table is written under a temporary name and renamed.
"""
import os
import platform
from os import path as osp

import torch
import yaml

from stdsr.runtime.device import resolve_device
from stdsr.utils.atomic_files import write_text_atomic
from stdsr.config.options import OptionLoader
from stdsr.utils.output_paths import check_output_file
from stdsr.tools.network_profile import ProfileError, format_table, load_network_opt, profile_network


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
        try:
            arch = yaml.load(text, Loader=OptionLoader)
        except yaml.YAMLError as err:
            raise ProfileError(f'--arch {text!r}: not valid YAML: {err}') from None
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

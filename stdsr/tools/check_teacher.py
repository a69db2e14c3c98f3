"""Score a distillation run's teacher on its validation set against bicubic, before the long run starts.

Reads a training option file (``network_t``, ``path.pretrain_network_t``, ``datasets.val``), loads the teacher
exactly as training does (strict), and prints the teacher's and bicubic's Y-PSNR. Exits with an error when the
teacher is worse than bicubic, unless --allow-worse-than-bicubic.

    python scripts/check_teacher.py -opt options/train/STD/zoo/train_VESPCN_STD_x4_Vimeo90K_EDVRL.yml --max-clips 2
"""
import argparse
import sys
from copy import deepcopy

import torch

import stdsr  # noqa: F401  (registers archs/datasets before basicsr builds them)
from basicsr.data import build_dataset
from stdsr.data.clip_io import DataError
from stdsr.archs.clip_runner import temporal_mode
from stdsr.distill.teacher import TeacherCheckpointError, build_frozen_teacher
from stdsr.distill.teacher_check import judge, score_teacher, teacher_check_options
from stdsr.config.options import OptionError, apply_force_yml, load_yaml, validate_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='training option file of a distillation run')
    parser.add_argument('--max-clips', type=int, help='score only the first clips of the validation set')
    parser.add_argument('--crop-border', type=int, default=0, help='pixels dropped on each side before PSNR')
    parser.add_argument('--allow-worse-than-bicubic', action='store_true', help='report, but do not fail')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--force_yml', nargs='+', default=None, help='override options, e.g. path:pretrain_network_t=X')
    return parser.parse_args(argv)


def val_dataset(opt):
    phases = [p for p in (opt.get('datasets') or {}) if p.split('_')[0] == 'val']
    if not phases:
        raise OptionError("teacher check: the option file has no 'datasets.val*' set")
    dataset_opt = deepcopy(opt['datasets'][phases[0]])
    dataset_opt.update(phase='val', scale=opt['scale'])
    return build_dataset(dataset_opt)


def run(args, log=print):
    opt = apply_force_yml(load_yaml(args.opt), args.force_yml)
    validate_options(opt, is_train=True, source=args.opt)
    settings = teacher_check_options({'max_clips': args.max_clips, 'crop_border': args.crop_border,
                                      'allow_worse_than_bicubic': args.allow_worse_than_bicubic})
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise OptionError('--device cuda but CUDA is not available')
    device = torch.device('cuda' if args.device != 'cpu' and torch.cuda.is_available() else 'cpu')
    teacher = build_frozen_teacher(opt, device)
    mode, window = temporal_mode(opt, 'network_t')
    dataset = val_dataset(opt)
    score = score_teacher(teacher, dataset, mode, window, opt['scale'], device, settings['max_clips'],
                          settings['crop_border'])
    line = judge(score, settings['allow_worse_than_bicubic'], dataset.opt.get('name', 'validation'))
    log(line)
    return score


def main(argv=None):
    try:
        run(parse_args(argv))
    except (OptionError, TeacherCheckpointError, DataError) as err:
        sys.exit(f'check_teacher: error: {err}')
    return 0

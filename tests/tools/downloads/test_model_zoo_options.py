"""The zoo option files: official EDVR teachers load strictly, the students of the paper share one recipe.

Checkpoints are written here in the official format (``{'params': state_dict}`` of basicsr's EDVR built with the
zoo's settings, copied from BasicSR's options/test/EDVR/*.yml), never downloaded. Networks are built on the meta
device where only key names and shapes matter.
"""
from copy import deepcopy
from pathlib import Path

import pytest
import torch

import stdsr  # noqa: F401  (patches torchvision before basicsr)
from basicsr.archs.edvr_arch import EDVR
from stdsr.distill.teacher import TeacherCheckpointError, build_frozen_teacher
from stdsr.tools.downloads import model_zoo as download
from stdsr.config.options import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ZOO_TRAIN = REPO_ROOT / 'options/train/STD/zoo'
BENCHMARKS = REPO_ROOT / 'options/test/STD/benchmarks'
ZOO_PREFIX = 'experiments/pretrained_models/'

# BasicSR's options/test/EDVR/test_EDVR_{L,M}_x4_SR_*.yml (and the woTSA model of its model zoo)
OFFICIAL = {
    'EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth': dict(num_feat=128, num_frame=7, num_reconstruct_block=40,
                                                        with_tsa=True),
    'EDVR_L_x4_SR_REDS_official-9f5f5039.pth': dict(num_feat=128, num_frame=5, num_reconstruct_block=40, with_tsa=True),
    'EDVR_M_x4_SR_REDS_official-32075921.pth': dict(num_feat=64, num_frame=5, num_reconstruct_block=10, with_tsa=True),
    'EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth': dict(num_feat=64, num_frame=5, num_reconstruct_block=10,
                                                          with_tsa=False),
}
COMMON = dict(num_in_ch=3, num_out_ch=3, deformable_groups=8, num_extract_block=5, center_frame_idx=None, hr_in=False,
              with_predeblur=False)
PAPER_STUDENTS = {'EDVRS': 'EDVR', 'VSRNet': 'VSRNet', 'VESPCN': 'VESPCN', 'FastDVDnetSR': 'FastDVDnetSR',
                  'BasicVSRS': 'BasicVSR'}


def zoo_files():
    return sorted(ZOO_TRAIN.glob('*.yml')) + sorted(BENCHMARKS.glob('*.yml'))


def zoo_uses():
    """(option file, network key, checkpoint file name) for every network loaded from the EDVR zoo."""
    uses = []
    for path in zoo_files():
        opt = load_yaml(str(path))
        for net_key in ('network_t', 'network_g'):
            ckpt = (opt.get('path') or {}).get('pretrain_' + net_key) or ''
            if ckpt.startswith(ZOO_PREFIX):
                uses.append((path, net_key, ckpt))
    return uses


@pytest.fixture(scope='module')
def official_checkpoints(tmp_path_factory):
    """file name -> a checkpoint with the official keys and shapes (zeros), written once per module."""
    root, made = tmp_path_factory.mktemp('zoo'), {}

    def make(file_name):
        if file_name not in made:
            with torch.device('meta'):
                net = EDVR(**COMMON, **OFFICIAL[file_name])
            made[file_name] = root / file_name
            torch.save({'params': {k: torch.zeros(v.shape) for k, v in net.state_dict().items()}}, made[file_name])
        return made[file_name]

    return make


def as_teacher_opt(opt, net_key, ckpt_path):
    return {'network_t': deepcopy(opt[net_key]), 'path': {'pretrain_network_t': str(ckpt_path)}}


def test_the_zoo_files_name_every_official_x4_sr_edvr():
    named = {Path(ckpt).name for _, _, ckpt in zoo_uses()}
    assert named == set(OFFICIAL)
    for _, _, ckpt in zoo_uses():  # the path BasicSR and scripts/download_pretrained_models.py use
        name = Path(ckpt).name.rsplit('-', 1)[0]
        assert name in download.ZOO and download.local_path(name, 'experiments/pretrained_models') == ckpt


@pytest.mark.parametrize('path,net_key,ckpt', zoo_uses(), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_network_settings_are_the_official_ones(path, net_key, ckpt):
    net = load_yaml(str(path))[net_key]
    expected = dict(COMMON, **OFFICIAL[Path(ckpt).name])
    assert net['type'] == 'EDVR'
    assert {k: net.get(k) for k in expected} == expected, path.name


def distinct_loads():
    """One strict load per distinct (checkpoint, network section): EDVR-L takes a second to build on the CPU."""
    seen, loads = set(), []
    for path, net_key, ckpt in zoo_uses():
        key = (ckpt, repr(sorted(load_yaml(str(path))[net_key].items())))
        if key not in seen:
            seen.add(key)
            loads.append((path, net_key, ckpt))
    return loads


@pytest.mark.parametrize('path,net_key,ckpt', distinct_loads(), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_official_checkpoints_load_strictly_through_the_teacher_loader(path, net_key, ckpt, official_checkpoints):
    opt = load_yaml(str(path))
    teacher = build_frozen_teacher(as_teacher_opt(opt, net_key, official_checkpoints(Path(ckpt).name)), 'cpu')
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(float(p.abs().sum()) == 0 for p in teacher.parameters())  # the written weights, not the init


@pytest.mark.parametrize('ckpt,wrong,expect', [
    ('EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth', 'EDVR_M_x4_SR_REDS_official-32075921.pth', 'missing keys'),
    ('EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth', 'EDVR_L_x4_SR_REDS_official-9f5f5039.pth', 'shape mismatches'),
])
def test_a_checkpoint_of_another_zoo_model_is_refused(ckpt, wrong, expect, official_checkpoints):
    """woTSA vs TSA and 7 vs 5 frames differ in keys and shapes: the strict loader must notice both."""
    opt = {'network_t': dict(type='EDVR', **COMMON, **OFFICIAL[wrong])}
    with pytest.raises(TeacherCheckpointError, match=expect):
        build_frozen_teacher(as_teacher_opt(opt, 'network_t', official_checkpoints(ckpt)), 'cpu')


def _recipe(opt):
    """Everything but the run's name, the student and its checkpoint: the part students must share."""
    opt = deepcopy(dict(opt))
    for key in ('name', 'network_g'):
        opt.pop(key)
    opt['path'] = {k: v for k, v in opt['path'].items() if k != 'pretrain_network_g'}
    return opt


def test_every_student_of_the_paper_distils_from_edvr_l_vimeo90k_with_one_recipe():
    files = {s: ZOO_TRAIN / f'train_{s}_STD_x4_Vimeo90K_EDVRL.yml' for s in PAPER_STUDENTS}
    opts = {s: load_yaml(str(p)) for s, p in files.items()}
    for student, opt in opts.items():
        assert opt['network_g']['type'] == PAPER_STUDENTS[student]
        assert Path(opt['path']['pretrain_network_t']).name == 'EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth'
        assert opt['datasets']['train']['num_frame'] == 7  # the septuplet: every frame supervised and distilled
        assert _recipe(opt) == _recipe(opts['EDVRS']), student
    reference = load_yaml(str(REPO_ROOT / 'options/train/STD/train_EDVRS_STD_x4_Vimeo90K.yml'))
    for section in ('datasets', 'train', 'val', 'distill'):  # the same recipe as the project's own EDVR-M files
        assert opts['EDVRS'][section] == reference[section], section


def test_every_zoo_std_run_has_a_baseline_with_the_same_data_and_budget():
    for std_path in ZOO_TRAIN.glob('train_*_STD_*.yml'):
        std = load_yaml(str(std_path))
        student, _, _, data = std['name'].split('_')[:4]
        candidates = [ZOO_TRAIN / f'train_{student}_baseline_x4_{data}.yml',
                      REPO_ROOT / f'options/train/STD/train_{student}_baseline_x4_{data}.yml',
                      REPO_ROOT / f'options/train/STD/students/train_{student}_baseline_x4_{data}.yml']
        found = [p for p in candidates if p.is_file()]
        assert found, f'{std_path.name}: no baseline among {[p.name for p in candidates]}'
        base = load_yaml(str(found[0]))
        assert base['network_g'] == std['network_g']
        for section in ('datasets', 'train', 'val'):
            assert base[section] == std[section], (std_path.name, section)


def test_benchmark_files_evaluate_what_a_training_file_writes_or_the_zoo():
    runs = {}
    for path in list((REPO_ROOT / 'options/train').rglob('*.yml')):
        opt = load_yaml(str(path))
        if 'name' in opt:
            runs[f"experiments/{opt['name']}/models/net_g_latest.pth"] = opt
    for path in sorted(BENCHMARKS.glob('*.yml')):
        opt = load_yaml(str(path))
        ckpt = opt['path']['pretrain_network_g']
        if ckpt.startswith(ZOO_PREFIX):
            continue
        assert ckpt in runs, f'{path.name}: no training file writes {ckpt}'
        trained = dict(runs[ckpt]['network_g'])
        tested = dict(opt['network_g'])
        if trained.get('spynet_path'):  # only the initialisation; the trained SpyNet is in the checkpoint
            assert tested.pop('spynet_path') is None
            trained.pop('spynet_path')
        assert tested == trained, path.name
        sets = [d['name'] for d in opt['datasets'].values()]
        assert sets == (['REDS4'] if 'REDS' in runs[ckpt]['datasets']['train']['name'] else ['Vid4', 'SPMCS', 'UDM10'])

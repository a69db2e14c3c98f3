"""CUDA, multi-GPU and launcher paths that no CI machine runs, each pinned on CPU (issue 15).

The GPU-only decisions are tested with ``torch.cuda`` queries mocked (device count, capability, RNG state
setters); DDP behaviour with two real gloo processes and tiny networks.
"""
import os
import socket
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

import stdsr  # noqa: F401
from ddp_workers import ema_and_rng_worker
from e2e_helpers import DEMO_OPTIONS

BASELINE_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_baseline_demo.yml')
STD_OPT = str(DEMO_OPTIONS / 'train_VESPCNS_STD_demo.yml')
TINY_G = ['network_g:num_feat=6', 'network_g:num_block=1', 'network_g:num_feat_hr=4', 'network_g:num_feat_flow=6',
          'network_g:num_frame=3', 'datasets:train:num_frame=3']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------- DDP, 2 gloo ranks
@pytest.fixture(scope='module')
def two_rank_run(tmp_path_factory):
    """One 2-process gloo run of ema_and_rng_worker (EMA on, seeds differ per rank as in stdsr.train)."""
    work = tmp_path_factory.mktemp('ddp')
    force = TINY_G + ['train:ema_decay=0.5', f'path:experiments_root={work}/exp', 'name=ddp_probe']
    mp.spawn(ema_and_rng_worker, args=(free_port(), str(work), BASELINE_OPT, force), nprocs=2, join=True)
    return [torch.load(work / f'rank{r}.pt', weights_only=False) for r in range(2)]


@pytest.mark.slow
def test_ema_is_identical_on_every_rank(two_rank_run):
    rank0, rank1 = two_rank_run
    for when in ('built', 'stepped'):
        assert rank0[when][0] == pytest.approx(rank1[when][0], rel=1e-12), f'net_g differs {when}'
        assert rank0[when][1] == pytest.approx(rank1[when][1], rel=1e-12), f'net_g_ema differs {when}'
    assert rank0['built'][1] == pytest.approx(rank0['built'][0], rel=1e-12)  # EMA starts as the synced net_g


@pytest.mark.slow
def test_each_rank_resumes_its_own_rng_state(two_rank_run):
    for out in two_rank_run:
        assert out['restored']
        assert torch.equal(out['after_save'][0], out['after_restore'][0])
        assert out['after_save'][1] == out['after_restore'][1]
    assert not torch.equal(two_rank_run[0]['after_save'][0], two_rank_run[1]['after_save'][0])


# ------------------------------------------------------------------------------------- mocked torch.cuda queries
@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend ``count`` CUDA devices are visible (only the queries; nothing may really touch a GPU)."""

    def install(count, capability=(8, 0)):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: capability)
        monkeypatch.setattr(torch.version, 'hip', None)
        calls = SimpleNamespace(set_device=[], init_process_group=[])
        monkeypatch.setattr(torch.cuda, 'set_device', calls.set_device.append)
        monkeypatch.setattr(torch.distributed, 'init_process_group',
                            lambda **kw: calls.init_process_group.append(kw))
        return calls

    return install


def build_opt(opt_file, force, tmp_path):
    from stdsr.runtime.dist import init_dist_from_options
    from stdsr.config.options import parse_options
    opt, _ = parse_options(['-opt', opt_file, '--force_yml', f'path:experiments_root={tmp_path}/exp', *force],
                           is_train=True, root_path=str(tmp_path))
    return init_dist_from_options(opt, 'none')


def test_data_parallel_with_distillation_is_refused_naming_torchrun(fake_gpus, tmp_path):
    from basicsr.models import build_model
    from stdsr.config.options import OptionError
    fake_gpus(2)
    opt = build_opt(STD_OPT, ['num_gpu=auto'], tmp_path)
    assert opt['num_gpu'] == 2 and not opt['dist']
    with pytest.raises(OptionError, match=r'DataParallel.*distillation.*torchrun --nproc_per_node=2') as err:
        build_model(opt)  # refused before any network is moved to a (fake) GPU
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('efficiency, refused', [('{compile: true}', 'compile'), ('{amp: bf16}', 'bf16'),
                                                 ('{amp: fp16}', None), ('{channels_last: true}', None)])
def test_data_parallel_refuses_compile_and_bf16(fake_gpus, tmp_path, efficiency, refused):
    from stdsr.runtime.device import prepare_device_options
    from stdsr.config.options import OptionError
    fake_gpus(4)
    opt = build_opt(BASELINE_OPT, ['num_gpu=2', f'train:efficiency={efficiency}'], tmp_path)
    if refused is None:
        prepare_device_options(opt)
    else:
        with pytest.raises(OptionError, match=rf'{refused}.*use torchrun'):
            prepare_device_options(opt)
    opt['dist'] = True  # one process per GPU under torchrun: no DataParallel, nothing refused
    prepare_device_options(opt)


def test_data_parallel_uses_num_gpu_devices_not_every_visible_one(monkeypatch):
    from stdsr.models import clip_vsr_model
    wrapped = {}

    def fake_data_parallel(net, **kwargs):
        wrapped.update(kwargs)
        return net

    monkeypatch.setattr(clip_vsr_model, 'DataParallel', fake_data_parallel)
    owner = SimpleNamespace(device=torch.device('cpu'), opt={'dist': False, 'num_gpu': 2})
    clip_vsr_model.ClipVSRModel.model_to_device(owner, torch.nn.Conv2d(1, 1, 1))
    assert wrapped.get('device_ids') == [0, 1]  # the loader scaled the batch by num_gpu = 2, not by 4 visible


@pytest.mark.parametrize('capability, refused', [((7, 0), True), ((7, 5), True), ((8, 0), False), ((9, 0), False)])
def test_bf16_needs_native_support_not_emulation(fake_gpus, monkeypatch, capability, refused):
    from stdsr.runtime.train_efficiency import TrainEfficiency
    from stdsr.config.options import OptionError
    fake_gpus(1, capability=capability)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda including_emulation=True: True)  # V100 says yes
    opt = {'train': {'efficiency': {'amp': 'bf16'}}}
    if refused:
        with pytest.raises(OptionError, match='native bfloat16.*use fp16'):
            TrainEfficiency(opt, torch.device('cuda', 0))
    else:
        assert TrainEfficiency(opt, torch.device('cuda', 0)).amp == 'bf16'


@pytest.mark.parametrize('backend', ['gloo', 'nccl'])
def test_each_rank_gets_its_own_gpu_whatever_the_backend(fake_gpus, monkeypatch, backend):
    from stdsr.runtime.dist import init_dist
    calls = fake_gpus(2)
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert init_dist('pytorch', num_gpu=2, backend=backend) == backend
    assert calls.set_device == [1] and calls.init_process_group == [{'backend': backend}]


def test_more_processes_than_gpus_is_an_error(fake_gpus, monkeypatch):
    from stdsr.runtime.dist import init_dist
    calls = fake_gpus(2)
    monkeypatch.setenv('LOCAL_RANK', '2')
    with pytest.raises(RuntimeError, match='LOCAL_RANK 2 but 2 GPU'):
        init_dist('pytorch', num_gpu=2, backend='nccl')
    assert calls.set_device == [] and calls.init_process_group == []  # never stacked on cuda:0


def test_cpu_ranks_do_not_touch_cuda(fake_gpus, monkeypatch):
    from stdsr.runtime.dist import init_dist
    calls = fake_gpus(2)
    monkeypatch.setenv('LOCAL_RANK', '5')
    assert init_dist('pytorch', num_gpu=0) == 'gloo'
    assert calls.set_device == []


def test_slurm_local_rank_comes_from_slurm_localid(fake_gpus, monkeypatch):
    from stdsr.runtime import dist as dist_util
    calls = fake_gpus(4)
    # 8 tasks on 4 nodes of 4 GPUs: task 6 is the second (local id 1) of its node; 6 % 4 would say GPU 2
    for key, value in dict(SLURM_PROCID='6', SLURM_NTASKS='8', SLURM_NODELIST='node[1-4]', SLURM_LOCALID='1',
                           MASTER_ADDR='x', MASTER_PORT='1', WORLD_SIZE='0', RANK='0', LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(dist_util.subprocess, 'getoutput', lambda cmd: 'node1')
    dist_util.init_dist('slurm', num_gpu=4, backend='nccl')
    assert calls.set_device == [1]
    assert (dist_util.os.environ['RANK'], dist_util.os.environ['WORLD_SIZE']) == ('6', '8')


def test_resume_with_rng_states_of_more_gpus_than_present(fake_gpus, monkeypatch):
    from stdsr.models.clip_vsr_model import restore_rng_state  # where stdsr.train imported it from before
    from stdsr.runtime.rng_state import capture_rng_state
    fake_gpus(1)
    restored = []

    def set_rng_state(state, device='cuda'):
        index = torch.device(device).index if not isinstance(device, int) else device
        if (index or 0) >= torch.cuda.device_count():
            raise IndexError(f'no CUDA device {index}')  # what torch raises on the real machine
        restored.append(index or 0)

    monkeypatch.setattr(torch.cuda, 'set_rng_state', set_rng_state)
    monkeypatch.setattr(torch.cuda.random, 'set_rng_state', set_rng_state)
    state = dict(capture_rng_state(), cuda=[torch.zeros(16, dtype=torch.uint8)] * 8)  # saved on 8 GPUs
    restore_rng_state(state)
    assert restored == [0]


def test_rank_rng_state_is_this_ranks_or_none_for_another_world_size():
    from stdsr.runtime.rng_state import rank_rng_state
    per_rank = {'rng': 'r0', 'rng_per_rank': ['r0', 'r1']}
    assert rank_rng_state(per_rank, 1, 2) == 'r1'
    assert rank_rng_state(per_rank, 0, 1) is None  # 2 processes saved it: model-side RNG cannot match
    assert rank_rng_state({'rng': 'r0'}, 0, 1) == 'r0'  # states written before per-rank saving
    assert rank_rng_state({'rng': 'r0'}, 1, 2) is None


# --------------------------------------------------------------------------------- compile, loading, determinism
def test_validation_runs_the_compiled_student_eagerly(tmp_path):
    from e2e_helpers import build_training_model
    model = build_training_model(BASELINE_OPT, TINY_G + [f'path:experiments_root={tmp_path}/exp'], tmp_path)
    bare = model.get_bare_model(model.net_g)
    compiled_calls = []

    def compiled(*args, **kwargs):  # stands in for the graph torch.compile traced for training
        compiled_calls.append(args[0].shape)
        return bare._call_impl(*args, **kwargs)

    bare._compiled_call_impl = compiled
    model.infer(torch.rand(1, 3, 3, 8, 8))
    assert compiled_calls == []  # eval / no_grad / full frames would each recompile it
    assert bare._compiled_call_impl is compiled
    model.feed_data({'lq': torch.rand(1, 3, 3, 8, 8), 'gt': torch.rand(1, 3, 3, 32, 32)})
    model.optimize_parameters(1)
    assert compiled_calls  # training still runs the compiled graph


def test_loaders_pin_memory_on_cuda_only(fake_gpus, tmp_path):
    from stdsr.runtime.device import apply_loader_defaults
    cpu = build_opt(BASELINE_OPT, ['num_gpu=0'], tmp_path)
    assert 'pin_memory' not in apply_loader_defaults(cpu)['datasets']['train']
    fake_gpus(1)
    gpu = build_opt(BASELINE_OPT, ['num_gpu=1'], tmp_path)
    assert apply_loader_defaults(gpu)['datasets']['train']['pin_memory'] is True
    unpinned = build_opt(BASELINE_OPT, ['num_gpu=1', 'datasets:train:pin_memory=false'], tmp_path)
    assert apply_loader_defaults(unpinned)['datasets']['train']['pin_memory'] is False  # an explicit choice stays


def test_prefetch_mode_cuda_is_used_on_gpu(fake_gpus, monkeypatch, tmp_path):
    from stdsr.runtime import device
    monkeypatch.setattr(device, 'CUDAPrefetcher', lambda loader, opt: ('cuda prefetcher', loader))
    fake_gpus(1)
    opt = build_opt(BASELINE_OPT, ['num_gpu=1', 'datasets:train:prefetch_mode=cuda'], tmp_path)
    device.prepare_device_options(opt)
    assert device.make_prefetcher('loader', opt) == ('cuda prefetcher', 'loader')


def test_prefetch_mode_cuda_on_cpu_is_refused_before_anything_is_written(tiny_demo_root, tmp_path):
    from e2e_helpers import tiny_run_overrides
    from stdsr.engine.training import train_pipeline
    from stdsr.config.options import OptionError
    force = tiny_run_overrides(tiny_demo_root, tmp_path, 1, 'prefetch') + TINY_G + ['datasets:train:prefetch_mode=cuda']
    with pytest.raises(OptionError, match='prefetch_mode: cuda.*use prefetch_mode: cpu'):
        train_pipeline(['-opt', BASELINE_OPT, '--force_yml', *force], root_path=str(tmp_path))
    assert not (tmp_path / 'experiments').exists()


@pytest.fixture
def restore_determinism():
    flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags[:2]
    torch.use_deterministic_algorithms(flags[2], warn_only=flags[3])


@pytest.mark.parametrize('deterministic', [True, False])
def test_train_deterministic_option(tmp_path, restore_determinism, deterministic):
    from stdsr.runtime.determinism import determinism_from_options
    opt = build_opt(BASELINE_OPT, [f'train:deterministic={str(deterministic).lower()}'], tmp_path)
    determinism_from_options(opt, is_train=True)
    assert torch.backends.cudnn.deterministic is deterministic
    assert torch.backends.cudnn.benchmark is not deterministic  # autotuning only when not deterministic
    assert torch.are_deterministic_algorithms_enabled() is deterministic
    if deterministic:
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # deform_conv2d backward warns, not stops


def test_val_deterministic_option_for_stdsr_test(tmp_path, restore_determinism):
    from stdsr.runtime.determinism import determinism_from_options
    from stdsr.config.options import parse_options
    test_opt = DEMO_OPTIONS.parents[2] / 'test' / 'STD'
    opt_file = sorted(test_opt.glob('*.yml'))[0]
    opt, _ = parse_options(['-opt', str(opt_file), '--force_yml', 'val:deterministic=true'], is_train=False,
                           root_path=str(tmp_path))
    determinism_from_options(opt, is_train=False)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_a_step_reads_the_device_once_and_reduces_subclass_scalars_with_the_losses(tmp_path, monkeypatch):
    from e2e_helpers import build_training_model
    model = build_training_model(BASELINE_OPT, TINY_G + [f'path:experiments_root={tmp_path}/exp'], tmp_path)
    model.step_scalars = lambda: {'raw': torch.tensor(2.5e-9, dtype=torch.float64), 'frozen': torch.tensor(True)}
    model.feed_data({'lq': torch.rand(1, 3, 3, 8, 8), 'gt': torch.rand(1, 3, 3, 32, 32)})
    reads = []

    def recorder(method, original):
        def read(self, *args):
            caller = sys._getframe(1).f_code.co_filename  # torch's own reads (Adam's CPU step counter) aside
            if 'torch' not in caller.split(os.sep):
                reads.append(method)
            return original(self, *args)
        return read

    for method in ('tolist', 'item', '__float__', '__bool__'):
        monkeypatch.setattr(torch.Tensor, method, recorder(method, getattr(torch.Tensor, method)))
    model.optimize_parameters(1)
    monkeypatch.undo()
    assert reads == ['tolist']  # the NaN guard's one host sync, shared with the subclass scalars
    assert model.step_values['raw'] == pytest.approx(2.5e-9, rel=1e-6) and model.step_values['frozen'] == 1.0
    assert list(model.log_dict) == ['l_pix']


@pytest.mark.slow
def test_compiled_student_under_ddp_keeps_the_all_reduce_overlap(tmp_path, monkeypatch):
    """Compiled in place, then wrapped: DDP's forward is active while dynamo converts the student's frames, so
    dynamo's DDPOptimizer splits the graph at bucket boundaries (what lets the all-reduce overlap the backward)."""
    from basicsr.models import build_model
    from torch._dynamo.backends.distributed import DDPOptimizer
    from stdsr.runtime.dist import destroy_dist
    split = []
    original_split = DDPOptimizer.compile_fn
    monkeypatch.setattr(DDPOptimizer, 'compile_fn', lambda self, gm, inputs: split.append(1) or original_split(
        self, gm, inputs))
    original_compile = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, 'compile', lambda self: original_compile(self, backend='eager'))  # no C++
    opt = build_opt(BASELINE_OPT, TINY_G + ['train:efficiency={compile: true}'], tmp_path)
    torch.distributed.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        opt.update(dist=True, rank=0, world_size=1)
        model = build_model(opt)
        assert isinstance(model.net_g, torch.nn.parallel.DistributedDataParallel)
        model.feed_data({'lq': torch.rand(1, 3, 3, 8, 8), 'gt': torch.rand(1, 3, 3, 32, 32)})
        model.optimize_parameters(1)
    finally:
        destroy_dist()
        torch._dynamo.reset()
    assert split  # the compiled student went through DDPOptimizer

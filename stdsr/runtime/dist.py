"""Process groups and devices for CPU and CUDA alike.

BasicSR's ``init_dist`` always uses nccl and ``torch.cuda.set_device``; here the backend follows the
device: nccl when this process trains on a GPU, gloo on CPU, so ``torchrun`` works on a laptop too.
"""
import os
import subprocess

import torch
import torch.distributed as dist

from basicsr.utils.dist_util import get_dist_info  # noqa: F401  (re-exported: rank/world size, 0/1 when single)


def default_backend(num_gpu):
    return 'nccl' if num_gpu > 0 and torch.cuda.is_available() else 'gloo'


def init_dist(launcher, num_gpu, backend=None, port=None):
    """Join the process group started by ``launcher`` ('pytorch' = torchrun, or 'slurm')."""
    backend = backend or default_backend(num_gpu)
    if launcher == 'slurm':
        _export_slurm_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f"unknown launcher '{launcher}' (use none, pytorch or slurm)")
    if num_gpu > 0 and torch.cuda.is_available():
        torch.cuda.set_device(local_gpu(int(os.environ.get('LOCAL_RANK', 0))))  # whatever the backend
    dist.init_process_group(backend=backend)
    return backend


def local_gpu(local_rank):
    """The GPU of local rank ``local_rank``: one per process; more processes than GPUs is an error, not stacking."""
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise RuntimeError(f'LOCAL_RANK {local_rank} but {count} GPU(s) visible on this node: start at most {count} '
                           'processes per node (torchrun --nproc_per_node, or SLURM tasks per node), one per GPU')
    return local_rank


def _export_slurm_env(port):
    """Translate SLURM's variables into the env:// ones torch reads."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', str(port or 29500))
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    # the task's index on its node (PROCID modulo the GPU count is wrong when nodes run fewer tasks than GPUs)
    local_id = os.environ.get('SLURM_LOCALID')
    os.environ['LOCAL_RANK'] = local_id if local_id is not None else str(proc_id % max(torch.cuda.device_count(), 1))


def init_dist_from_options(opt, launcher):
    """Fill ``opt['dist']``, ``rank`` and ``world_size``; start the process group when launched for it."""
    if launcher == 'none':
        opt['dist'] = False
    else:
        params = opt.get('dist_params') or {}
        opt['dist_backend'] = init_dist(launcher, opt['num_gpu'], params.get('backend'), params.get('port'))
        opt['dist'] = True
    opt['rank'], opt['world_size'] = get_dist_info()
    return opt


def process_device(opt):
    """The device this process trains on: its own GPU under a CUDA process group, cuda:0, or the CPU."""
    if opt.get('num_gpu', 0) == 0 or not torch.cuda.is_available():
        return torch.device('cpu')
    if opt.get('dist'):
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cuda')


def all_reduce_mean(tensor):
    """Average a tensor over ranks in place (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def all_gather_objects(obj):
    """Every rank's ``obj``, in rank order ([obj] when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def destroy_dist():
    """Leave the process group, if this process joined one (entry points call it on exit, errors included)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()

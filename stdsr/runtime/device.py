"""Device-dependent choices that must be made once, at start-up, and the combinations refused there.

No GPU has run this code in CI, so every CUDA-only decision lives in a small function whose ``torch.cuda``
queries the tests can mock: which GPU generations have native bfloat16, which option combinations
DataParallel cannot run, how batches reach the device (pinned memory, ``prefetch_mode``).
"""
import torch

from basicsr.data.prefetch_dataloader import CPUPrefetcher
from basicsr.data.prefetch_dataloader import CUDAPrefetcher as BasicSRCUDAPrefetcher

from stdsr.errors import OptionError, UserInputError

TORCHRUN_HINT = ('use torchrun --nproc_per_node={n} -m stdsr.train -opt FILE --launcher pytorch '
                 '(one process per GPU), or num_gpu: 1')


def uses_data_parallel(opt):
    """BasicSR's rule: more than one GPU without a launcher means one process with DataParallel."""
    return not opt.get('dist', False) and int(opt.get('num_gpu') or 0) > 1


def data_parallel_conflict(opt):
    """Why DataParallel cannot train these options (None when it can).

    Replicas run in worker threads on copies of the module: forward hooks of the copies record per-GPU
    slices in thread order (distillation), the in-place compiled ``_call_impl`` is the original's (weights
    on cuda:0), and the threads re-enter autocast without a dtype, i.e. in fp16 with no GradScaler.
    """
    eff = (opt.get('train') or {}).get('efficiency') or {}
    if opt.get('distill') or opt.get('network_t'):
        return 'cannot run distillation (its feature hooks and the teacher are not replicated per GPU)'
    if eff.get('compile'):
        return "cannot run 'train.efficiency.compile' (replicas would call the original module's compiled code)"
    if eff.get('amp') == 'bf16':
        return "cannot run 'train.efficiency.amp: bf16' (its worker threads autocast to fp16)"
    return None


def check_data_parallel(opt):
    """Refuse, at start-up and in one line, what DataParallel would train wrongly or crash on."""
    if not (opt.get('is_train', True) and uses_data_parallel(opt)):
        return
    reason = data_parallel_conflict(opt)
    if reason is not None:
        n = opt['num_gpu']
        raise OptionError(f"num_gpu: {n} without a launcher trains with DataParallel, which {reason}; "
                          + TORCHRUN_HINT.format(n=n))


def data_parallel_device_ids(opt):
    """Exactly ``num_gpu`` devices: the loader scales the batch by ``num_gpu``, not by the visible count."""
    return list(range(int(opt['num_gpu'])))


def bf16_native(device):
    """Whether the GPU computes in bfloat16 natively (compute capability 8.0+, Ampere on; any ROCm GPU).

    ``torch.cuda.is_bf16_supported()`` also counts emulation, under which bf16 runs far slower than fp16
    on a V100 or T4, so it cannot decide between the two.
    """
    if torch.version.hip:
        return True
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def on_cuda(opt):
    return int(opt.get('num_gpu') or 0) > 0 and torch.cuda.is_available()


def apply_loader_defaults(opt):
    """Pinned host memory when batches go to a GPU, so ``.to(device, non_blocking=True)`` is truly async."""
    if not on_cuda(opt):
        return opt
    for dataset_opt in (opt.get('datasets') or {}).values():
        dataset_opt.setdefault('pin_memory', True)
    return opt


def check_prefetch_mode(opt):
    """``datasets.train.prefetch_mode``: ``cpu``/unset, or ``cuda`` on a GPU run with pinned memory.

    ``cuda`` on a CPU run is refused rather than silently ignored.
    """
    dataset_opt = (opt.get('datasets') or {}).get('train') or {}
    mode = dataset_opt.get('prefetch_mode')
    if mode in (None, 'cpu'):
        return 'cpu'
    if mode != 'cuda':
        raise OptionError(f"option 'datasets.train.prefetch_mode' must be cpu, cuda or ~, got {mode!r}")
    if not on_cuda(opt):
        raise OptionError("option 'datasets.train.prefetch_mode: cuda' needs a GPU run; use prefetch_mode: cpu "
                          '(and num_worker_per_gpu > 0 to load in the background)')
    if dataset_opt.get('pin_memory') is False:
        raise OptionError("option 'datasets.train.prefetch_mode: cuda' needs pin_memory: true")
    return 'cuda'


def prepare_device_options(opt):
    """Start-up checks and defaults that depend on the device (called once the process group is known)."""
    check_data_parallel(opt)
    apply_loader_defaults(opt)
    check_prefetch_mode(opt)
    return opt


class CUDAPrefetcher(BasicSRCUDAPrefetcher):
    """BasicSR's CUDAPrefetcher, plus ``record_stream``: the batch is allocated on the copy stream and used on
    the compute stream, so without it the allocator may hand its memory to the next copy while still in use."""

    def next(self):
        torch.cuda.current_stream().wait_stream(self.stream)
        batch = self.batch
        if batch is not None:
            for value in batch.values():
                if torch.is_tensor(value) and value.is_cuda:
                    value.record_stream(torch.cuda.current_stream())
        self.preload()
        return batch


def make_prefetcher(loader, opt):
    """CPUPrefetcher, or a CUDA prefetcher (copies the next batch on a side stream) for ``cuda``."""
    if check_prefetch_mode(opt) == 'cuda':
        return CUDAPrefetcher(loader, opt)
    return CPUPrefetcher(loader)


def resolve_device(name='auto'):
    """A ``--device`` argument as a device: 'auto' -> CUDA when available, else CPU; asking for CUDA without it
    is an error naming the argument, not a silent CPU run."""
    if name in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UserInputError(f"--device {name}: no CUDA device is available (use --device cpu or auto)")
    return device

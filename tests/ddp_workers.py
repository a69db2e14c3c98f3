"""Workers for 2-process gloo tests started with ``torch.multiprocessing.spawn`` (importable by the children)."""
import os
import random

import torch

import stdsr  # noqa: F401
from basicsr.models import build_model
from basicsr.utils import set_random_seed


def checksum(net):
    return float(sum(p.detach().double().abs().sum() for p in net.state_dict().values()))


def ema_and_rng_worker(rank, port, out_dir, opt_file, force):
    """Build a model as ``stdsr.train`` does (seed + rank, DDP on gloo), train one step, save, restore RNG.

    Writes ``rank<r>.pt``: checksums of net_g / net_g_ema after build and after a step, the devices of every
    tensor handed to a collective, and torch/python draws right after the save and after the restore.
    """
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port), OMP_NUM_THREADS='1')
    torch.set_num_threads(1)
    from stdsr.runtime.checkpoint import load_training_state
    from stdsr.runtime.dist import destroy_dist, init_dist_from_options
    from stdsr.config.options import parse_options
    from stdsr.runtime.rng_state import restore_rank_rng_state
    opt, args = parse_options(['-opt', opt_file, '--launcher', 'pytorch', '--force_yml', *force], is_train=True)
    init_dist_from_options(opt, args.launcher)
    try:
        set_random_seed(opt['manual_seed'] + opt['rank'])
        model = build_model(opt)
        bare = model.get_bare_model(model.net_g)
        out = {'built': (checksum(bare), checksum(model.net_g_ema))}
        gen = torch.Generator().manual_seed(100 + rank)  # ranks see different data, as with a sharded sampler
        n = opt['datasets']['train']['num_frame']
        model.feed_data({'lq': torch.rand(2, n, 3, 8, 8, generator=gen),
                         'gt': torch.rand(2, n, 3, 32, 32, generator=gen)})
        model.optimize_parameters(1)
        out['stepped'] = (checksum(bare), checksum(model.net_g_ema))
        model.save(epoch=0, current_iter=1)
        out['after_save'] = (torch.rand(4), random.random())
        torch.distributed.barrier()
        state = load_training_state(os.path.join(opt['path']['training_states'], '1.state'))
        torch.rand(100), random.random()  # move on, then come back
        out['restored'] = restore_rank_rng_state(state, opt['rank'], opt['world_size'])
        out['after_restore'] = (torch.rand(4), random.random())
        torch.save(out, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        destroy_dist()

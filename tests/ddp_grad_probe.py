"""Run ONE training step exactly as ``stdsr.train`` would and save the (rank-averaged) gradients.

Used by tests/test_reliability.py to compare K gloo processes with batch B against one process with
batch K*B. Usage: ``[torchrun ...] python tests/ddp_grad_probe.py OUT.pt -opt X.yml [--launcher pytorch]
[--force_yml ...]``.
"""
import sys

import torch

import stdsr  # noqa: F401
from basicsr.models import build_model
from basicsr.utils import set_random_seed
from stdsr.engine.training import build_train_val_loaders
from stdsr.runtime.dist import init_dist_from_options
from stdsr.config.options import parse_options


def main(argv):
    out_path, argv = argv[0], argv[1:]
    opt, args = parse_options(argv, is_train=True)
    init_dist_from_options(opt, args.launcher)
    set_random_seed(opt['manual_seed'] + opt['rank'])
    train_loader, sampler, *_ = build_train_val_loaders(opt)
    sampler.set_epoch(0)
    model = build_model(opt)
    batch = next(iter(train_loader))
    model.feed_data(batch)
    model.optimize_parameters(1)
    grads = {name: p.grad.detach().clone() for name, p in model.get_bare_model(model.net_g).named_parameters()
             if p.grad is not None}
    for name, term in getattr(model, 'distill_terms', {}).items():
        grads.update({f'distill.{name}.{k}': p.grad.detach().clone() for k, p in term.named_parameters()
                      if p.grad is not None})
    if opt['rank'] == 0:
        torch.save({'grads': grads, 'keys': batch['key'], 'log': model.log_dict}, out_path)
    if opt['dist']:
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1:])

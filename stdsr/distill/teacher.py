"""The frozen teacher: built from ``network_t``, strictly loaded, and never trained or saved.

A teacher checkpoint that does not fit ``network_t`` would otherwise distil noise for days, so the
load is strict and a mismatch names the missing, unexpected and mis-shaped keys.
"""
from os import path as osp

from stdsr.errors import TeacherCheckpointError
from stdsr.runtime.checkpoint import WeightsError, build_with_weights, check_state_dict_fits, read_weights  # noqa: F401


def build_frozen_teacher(opt, device):
    """``network_t`` with the weights of ``path.pretrain_network_t``, in eval mode with no gradients."""
    if 'network_t' not in opt:
        raise TeacherCheckpointError("option 'network_t' is required for distillation")
    load_path = (opt.get('path') or {}).get('pretrain_network_t')
    if not load_path:
        raise TeacherCheckpointError("option 'path.pretrain_network_t' is required: the teacher must be pretrained")
    if not osp.isfile(load_path):
        raise TeacherCheckpointError(f"option 'path.pretrain_network_t': no such file {load_path}")
    try:  # the training side's preference: 'params' (what BasicSR saves), unless param_key_t says otherwise
        net_t, _ = build_with_weights(opt['network_t'], load_path, prefer=('params', ),
                                      param_key=opt['path'].get('param_key_t'), what='path.pretrain_network_t',
                                      label=f"path.pretrain_network_t ({load_path}) for network_t "
                                      f"({opt['network_t']['type']})")
    except WeightsError as err:
        raise TeacherCheckpointError(str(err)) from None
    net_t.to(device).eval()
    net_t.requires_grad_(False)
    return net_t

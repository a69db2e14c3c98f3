"""ClipVSRModel's pretrained loading: one read of the file, BasicSR's key fallback, strict and non-strict loads."""
import pytest
import torch

import stdsr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from e2e_helpers import save_net, tiny_vsrnet_opt
from stdsr.errors import WeightsError
from stdsr.models.clip_vsr_model import ClipVSRModel


def model_from(ckpt, train=None, **paths):
    """A ClipVSRModel of the tiny VSRNet starting from ``ckpt``: for evaluation, or training with ``train``."""
    opt = {'name': 'tiny', 'is_train': train is not None, 'num_gpu': 0, 'dist': False, 'rank': 0, 'world_size': 1,
           'scale': 4, 'network_g': tiny_vsrnet_opt(), 'path': {'pretrain_network_g': str(ckpt), **paths}}
    if train is not None:
        opt['train'] = train
    return ClipVSRModel(opt)


def same_weights(net, state):
    return all(torch.equal(value, state[key]) for key, value in net.state_dict().items())


def test_the_checkpoint_is_read_once(tmp_path, monkeypatch):
    ckpt = tmp_path / 'net_g.pth'
    saved = save_net(ckpt, tiny_vsrnet_opt(), seed=1, keys=('params', 'params_ema'))
    reads = []
    real_load = torch.load

    def counting_load(path, *args, **kwargs):
        reads.append(str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counting_load)
    model = model_from(ckpt)
    assert reads == [str(ckpt)]
    assert same_weights(model.net_g, saved.state_dict())


def test_a_missing_param_key_falls_back_to_params_as_in_basicsr(tmp_path):
    ckpt = tmp_path / 'net_g.pth'
    saved = save_net(ckpt, tiny_vsrnet_opt(), seed=2, keys=('params', ))
    model = model_from(ckpt, param_key_g='params_ema')
    assert same_weights(model.net_g, saved.state_dict())


def test_a_bare_state_dict_loads(tmp_path):
    ckpt = tmp_path / 'published.pth'
    saved = save_net(tmp_path / 'unused.pth', tiny_vsrnet_opt(), seed=3)
    torch.save(saved.state_dict(), ckpt)
    model = model_from(ckpt)
    assert same_weights(model.net_g, saved.state_dict())


def test_a_checkpoint_of_another_network_is_one_line_naming_the_option(tmp_path):
    other = dict(tiny_vsrnet_opt(), num_feat_hr=5)
    ckpt = tmp_path / 'other.pth'
    save_net(ckpt, other, seed=4)
    with pytest.raises(WeightsError) as exc:
        model_from(ckpt)
    message = str(exc.value)
    assert '\n' not in message
    assert 'path.pretrain_network_g' in message and str(ckpt) in message and 'shape mismatches' in message


def test_not_strict_loads_what_fits_and_keeps_the_rest_at_init(tmp_path):
    other = dict(tiny_vsrnet_opt(), num_feat_hr=5)  # conv_hr and conv_last change shape, the rest fits
    ckpt = tmp_path / 'other.pth'
    saved = save_net(ckpt, other, seed=5).state_dict()
    torch.manual_seed(0)
    model = model_from(ckpt, strict_load_g=False)
    own = model.net_g.state_dict()
    fitting = [k for k in own if tuple(own[k].shape) == tuple(saved[k].shape)]
    changed = [k for k in own if k not in fitting]
    assert fitting and changed
    assert all(torch.equal(own[k], saved[k]) for k in fitting)
    torch.manual_seed(0)
    init = build_network(tiny_vsrnet_opt()).state_dict()  # what the model built before loading
    assert all(torch.equal(own[k], init[k]) for k in changed)


def test_the_ema_copy_starts_from_params_ema_and_the_student_from_params(tmp_path):
    ckpt = tmp_path / 'net_g.pth'
    params = save_net(tmp_path / 'a.pth', tiny_vsrnet_opt(), seed=6).state_dict()
    ema = save_net(tmp_path / 'b.pth', tiny_vsrnet_opt(), seed=7).state_dict()
    torch.save({'params': params, 'params_ema': ema}, ckpt)
    model = model_from(ckpt, train={'ema_decay': 0.999, 'total_iter': 10, 'optim_g': {'type': 'Adam', 'lr': 1e-4},
                                    'scheduler': {'type': 'MultiStepLR', 'milestones': [5], 'gamma': 0.5}})
    assert same_weights(model.get_bare_model(model.net_g), params)
    assert same_weights(model.net_g_ema, ema)

"""stdsr.inference.model_loading: EMA weights first, strict loads whose errors name the file, and inference on the
model's device (the tiny networks are the ``nets`` fixture of tests/conftest.py)."""
import pytest
import torch

import stdsr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from e2e_helpers import option_file, save_net, stand_in_for_trained, tiny_vsrnet_opt
from stdsr.inference.model_loading import LoadedModel, ModelLoadError, model_from_ckpt, model_from_opt


def test_loading_prefers_params_ema_and_reports_parameters(tmp_path, nets):
    net_opt = tiny_vsrnet_opt()
    torch.manual_seed(5)
    raw, ema = stand_in_for_trained(build_network(net_opt)), stand_in_for_trained(build_network(net_opt))
    torch.save({'params': raw.state_dict(), 'params_ema': ema.state_dict()}, tmp_path / 'both.pth')
    model = model_from_ckpt(str(tmp_path / 'both.pth'), nets['arch'], device='cpu')
    assert torch.equal(model.net.conv_last.weight, ema.conv_last.weight)
    assert not torch.equal(model.net.conv_last.weight, raw.conv_last.weight)
    assert model.label == 'both' and '[params_ema]' in model.source
    assert model.num_params == sum(p.numel() for p in ema.parameters())
    assert (model.mode, model.window, model.scale) == ('sliding', 3, 4)
    opt_model = model_from_opt(nets['opt_a'], device='cpu')
    assert opt_model.label == 'A' and '[params]' in opt_model.source


def test_loading_errors_name_the_file(tmp_path, nets):
    with pytest.raises(ModelLoadError, match='missing.pth'):
        model_from_ckpt(str(tmp_path / 'missing.pth'), nets['arch'])
    with pytest.raises(ModelLoadError, match='missing keys.*conv_hr'):
        torch.save({'params': {'conv_last.weight': torch.zeros(1)}}, tmp_path / 'partial.pth')
        model_from_ckpt(str(tmp_path / 'partial.pth'), nets['arch'])
    no_ckpt = option_file(tmp_path / 'untrained.yml', tiny_vsrnet_opt(), experiments_root=tmp_path / 'exp')
    with pytest.raises(ModelLoadError, match='net_g_latest.pth'):
        model_from_opt(no_ckpt)
    # once the run has written net_g_latest.pth, the same option file loads it
    (tmp_path / 'exp' / 'models').mkdir(parents=True)
    save_net(tmp_path / 'exp' / 'models' / 'net_g_latest.pth', tiny_vsrnet_opt(), 0)
    assert model_from_opt(no_ckpt).source.endswith('net_g_latest.pth [params]')


def test_loaded_model_infer_runs_on_the_model_device(nets):
    model = model_from_opt(nets['opt_a'], device='cpu')
    assert isinstance(model, LoadedModel) and model.fsr_tap == 'conv_last:input'
    out = model.infer(torch.rand(1, 4, 3, 6, 5))
    assert out.shape == (1, 4, 3, 24, 20) and out.device.type == 'cpu'

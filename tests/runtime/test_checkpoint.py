"""A checkpoint that does not fit its network is reported on one line a person reads."""
import pytest
import torch

from stdsr.runtime.checkpoint import WeightsError, check_state_dict_fits


def stack(width, depth):
    return torch.nn.Sequential(*[torch.nn.Conv2d(width, width, 3) for _ in range(depth)])


def test_a_mismatched_checkpoint_is_one_short_line_with_the_first_keys_and_the_count_of_the_rest():
    net = stack(8, 30)
    state = {f'other.{k}': v for k, v in stack(8, 12).state_dict().items()}  # 24 unexpected keys
    state.update({k: torch.zeros(4, 4, 3, 3) for k in list(net.state_dict())[:20] if k.endswith('weight')})
    with pytest.raises(WeightsError) as err:
        check_state_dict_fits(net, state, 'checkpoint x.pth (params)')
    message = str(err.value)
    assert '\n' not in message and len(message) < 400, message
    missing = sorted(set(net.state_dict()) - set(state))
    assert f'missing keys: {missing[0]}, {missing[1]}, {missing[2]} and {len(missing) - 3} more' in message
    assert 'unexpected keys: other.0.bias, other.0.weight, other.1.bias and 21 more' in message
    assert 'shape mismatches: 0.weight: checkpoint (4, 4, 3, 3) vs network (8, 8, 3, 3)' in message
    assert 'and 7 more' in message  # 10 weights of the first 20 keys have the wrong shape

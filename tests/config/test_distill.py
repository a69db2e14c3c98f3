"""stdsr.config.distill: the distill section is checked by option validation itself, before anything is built."""
import pytest

import stdsr  # noqa: F401  (registers the losses the check looks up)
from stdsr.config.distill import check_distill_options
from stdsr.config.options import OptionError, load_yaml, validate_options
from e2e_helpers import DEMO_OPTIONS

STD_DEMO = DEMO_OPTIONS / 'train_VESPCNS_STD_demo.yml'


def std_options():
    return load_yaml(str(STD_DEMO))


@pytest.mark.parametrize('change, says', [
    (lambda d: d['losses']['sd'].update(mapingg='sum_pow'), r"unknown option 'distill\.losses\.sd\.mapingg'"),
    (lambda d: d.update(balance={'calibration_iters': 0}), r"'distill\.balance\.calibration_iters' must be an integer"),
    (lambda d: d['losses']['sd'].update(loss_share=0.5, loss_weight=1.0), r"'distill\.losses\.sd\.loss_weight' and"),
    (lambda d: d.update(teacher_layerz='conv_last'), r"unknown option 'distill\.teacher_layerz'"),
    (lambda d: d.pop('student_layer'), r"'distill\.student_layer' \(or 'distill\.losses\.sd\.student_layer'\)"),
])
def test_option_validation_rejects_a_bad_distill_section_naming_file_and_key(change, says):
    opt = std_options()
    change(opt['distill'])
    with pytest.raises(OptionError, match=rf'^{STD_DEMO}: .*{says}') as err:
        validate_options(opt, is_train=True, source=str(STD_DEMO))
    assert '\n' not in str(err.value)


def test_a_distillation_model_without_a_distill_section_is_refused_at_validation():
    opt = std_options()
    del opt['distill']
    with pytest.raises(OptionError, match=r"option 'distill\.losses' is required"):
        validate_options(opt, is_train=True, source=str(STD_DEMO))


def test_the_demo_distill_section_passes_and_is_returned():
    opt = std_options()
    validate_options(opt, is_train=True, source=str(STD_DEMO))
    assert check_distill_options(opt) is opt['distill'] and set(opt['distill']['losses']) == {'sd', 'td'}

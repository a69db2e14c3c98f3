"""Issue 33, item 1: every YAML the project reads is data; a Python tag runs nothing and is one line."""
import pytest

import stdsr  # noqa: F401
import stdsr.test as stdsr_test
import stdsr.train as stdsr_train
from e2e_helpers import DEMO_OPTIONS
from stdsr.config.options import OptionError, apply_force_yml, load_yaml
from stdsr.config.yaml_reader import read_yaml_text, yaml_value

TEACHER_OPT = DEMO_OPTIONS / 'train_EDVR_teacher_demo.yml'


def _tag(marker):
    """A tag that, if constructed, would create ``marker``."""
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err and '\n' not in err and 'Traceback' not in err
    return err


@pytest.mark.parametrize('main, prog', [(stdsr_train.main, 'stdsr.train'), (stdsr_test.main, 'stdsr.test')])
def test_a_python_tag_in_an_option_file_runs_nothing_and_names_file_and_line(tmp_path, capsys, main, prog):
    marker = tmp_path / 'executed'
    opt = tmp_path / 'evil.yml'
    opt.write_text(f'model_type: ClipVSRModel\nname: {_tag(marker)}\n')
    assert main(['-opt', str(opt)]) == 2
    err = _one_line_error(capsys)
    assert err.startswith(f'{prog}: error: {opt}: line 2: ') and "'!!python/object/apply:os.system'" in err
    assert not marker.exists()


def test_a_python_tag_in_a_force_yml_value_runs_nothing(tmp_path, capsys):
    marker = tmp_path / 'executed'
    entry = f'name={_tag(marker)}'
    assert stdsr_train.main(['-opt', str(TEACHER_OPT), '--force_yml', entry]) == 2
    err = _one_line_error(capsys)
    assert f"--force_yml '{entry}': line 1: the tag '!!python/object/apply:os.system' is not allowed" in err
    assert not marker.exists()


def test_a_python_tag_in_a_plan_or_a_benchmark_list_runs_nothing(tmp_path):
    from stdsr.tools import comparison as cd
    from stdsr.errors import BenchmarkError
    from stdsr.tools.benchmarking.datasets import read_datasets_yaml

    marker = tmp_path / 'executed'
    plan = tmp_path / 'plan.yml'
    plan.write_text(f'seeds: [0]\nruns:\n  - {_tag(marker)}\n')
    with pytest.raises(cd.CompareError, match=rf"^{plan}: line 3: the tag '!!python/object/apply:os.system'"):
        cd.resolve_settings(cd.build_arg_parser().parse_args(['--plan', str(plan)]))
    sets = tmp_path / 'sets.yml'
    sets.write_text(f'- name: {_tag(marker)}\n  gt_root: x\n')
    with pytest.raises(BenchmarkError, match=rf"^{sets}: line 1: the tag '!!python/object/apply"):
        read_datasets_yaml(str(sets))
    assert not marker.exists()


def test_the_safe_reader_keeps_order_floats_and_duplicate_refusal(tmp_path):
    path = tmp_path / 'o.yml'
    path.write_text('b: 1e-8\na: [1, 2]\n')
    opt = load_yaml(str(path))
    assert list(opt) == ['b', 'a'] and opt['b'] == 1e-8
    with pytest.raises(OptionError, match=r"^src: duplicate option key 'k' on line 2 \(first given on line 1\)$"):
        read_yaml_text('k: 1\nk: 2\n', 'src')
    with pytest.raises(OptionError, match=r'^src: line 1: not valid YAML: '):
        read_yaml_text('k: [1,', 'src')


@pytest.mark.parametrize('value', ['my run #2', 'a: b', '1e-8', 'yes', '~', "it's \"x\"", [1, 2], 1e-8, 3, None])
def test_yaml_value_reads_back_as_the_same_data(value):
    opt = apply_force_yml({'name': 'x'}, [f'name={yaml_value(value)}'])
    assert opt['name'] == value and type(opt['name']) is type(value)

"""The demo's test option files and the examples of the docs match the runs `make demo` makes.

The demo's runs are taken from scripts/run_demo.py (STEPS), so a change of the demo's networks or names shows
up here. The docs' examples run as written (on the tiny demo set, with stand-in checkpoints of the demo's
networks where `make demo` would have trained them). Every doc's commands name scripts, flags, option files and
folders that exist in a clone after `make demo`.
"""
import re
import shlex

import pytest
import torch
import yaml

import stdsr  # noqa: F401
from basicsr.archs import build_network
from e2e_helpers import DEMO_OPTIONS, REPO_ROOT, load_script
from stdsr.config.options import validate_options

STEPS = load_script('run_demo').STEPS  # (label, train option file, experiment name)
TEST_OPTIONS = REPO_ROOT / 'options' / 'test' / 'STD' / 'demo'


def read_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_each_demo_run_has_a_test_option_file_of_the_same_network():
    for _, train_file, name in STEPS:
        test_file = TEST_OPTIONS / train_file.replace('train_', 'test_', 1)
        assert test_file.is_file(), f'no test option file for {train_file}'
        train_opt, test_opt = read_yaml(DEMO_OPTIONS / train_file), read_yaml(test_file)
        assert train_opt['name'] == name
        assert test_opt['network_g'] == train_opt['network_g'] and test_opt['scale'] == train_opt['scale']
        assert test_opt['path']['pretrain_network_g'] == f'experiments/{name}/models/net_g_latest.pth'
        validate_options(test_opt, is_train=False, source=str(test_file))


def doc_commands(script):
    """Every ``python scripts/<script>`` command of docs/benchmark.md's bash blocks, as argument lists."""
    text = (REPO_ROOT / 'docs' / 'benchmark.md').read_text()
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        for command in block.replace('\\\n', ' ').splitlines():
            command = command.split('#')[0].strip()
            if command.startswith(f'python scripts/{script}'):
                commands.append(shlex.split(command)[2:])
    return commands


def demo_commands(script):
    """The docs' commands of ``script`` that use demo option files: those must name runs `make demo` makes."""
    return [c for c in doc_commands(script) if any('/demo/' in a for a in c)]


@pytest.fixture(scope='module')
def demo_workspace(tiny_demo_root, tmp_path_factory):
    """A folder laid out as after `make demo`: datasets/demo and each run's net_g_latest.pth (random weights)."""
    work = tmp_path_factory.mktemp('after_make_demo')
    (work / 'datasets').mkdir()
    (work / 'datasets' / 'demo').symlink_to(tiny_demo_root)
    (work / 'options').symlink_to(REPO_ROOT / 'options')
    torch.manual_seed(0)
    for _, train_file, name in STEPS:
        models = work / 'experiments' / name / 'models'
        models.mkdir(parents=True)
        net = build_network(read_yaml(DEMO_OPTIONS / train_file)['network_g'])
        torch.save({'params': net.state_dict()}, models / 'net_g_latest.pth')
    return work


def test_docs_option_files_exist_and_demo_examples_use_the_demo_runs():
    text = (REPO_ROOT / 'docs' / 'benchmark.md').read_text()
    for path in set(re.findall(r'options/[\w/]+\.yml', text)):
        assert (REPO_ROOT / path).is_file(), path
    demo_files = {f for _, f, _ in STEPS} | {f.replace('train_', 'test_', 1) for _, f, _ in STEPS}
    used = [a.split('=')[-1] for s in ('benchmark.py', 'inference_vsr.py', 'visualize_attention.py')
            for c in demo_commands(s) for a in c if a.endswith('_demo.yml')]
    assert used and all(p.split('/')[-1] in demo_files for p in used), used


def test_docs_benchmark_examples_run_after_make_demo(demo_workspace, monkeypatch):
    monkeypatch.chdir(demo_workspace)
    commands = demo_commands('benchmark.py')
    assert len(commands) == 2
    for argv in commands:
        report = load_script('benchmark').main(argv + ['--max-frames', '3', '--warmup', '0', '--quiet',
                                                       '--device', 'cpu', '--bicubic', 'torch'])
        labels = [m['label'] for m in report['models']]
        assert labels[0] == 'bicubic' and len(labels) == 1 + sum(a == '--opt' for a in argv)


def test_docs_inference_and_figure_examples_run_after_make_demo(demo_workspace, monkeypatch):
    monkeypatch.chdir(demo_workspace)
    (argv, ) = demo_commands('inference_vsr.py')
    count, _ = load_script('inference_vsr').main(argv + ['--device', 'cpu', '--no-progress'])
    assert count == 5  # every frame of the tiny demo clip
    (argv, ) = demo_commands('visualize_attention.py')
    written = load_script('visualize_attention').main(argv + ['--device', 'cpu', '--panel-px', '64'])
    assert len(written) == 4


# ------------------------------------------------------------------------------------------- every doc's commands
DOCS = ['README.md', 'datasets/README.md'] + sorted(f'docs/{p.name}' for p in (REPO_ROOT / 'docs').glob('*.md'))
FLAG = re.compile(r'^\[?(--?[A-Za-z][\w-]*)')
PACKAGE_TEXT = '\n'.join(p.read_text() for p in (REPO_ROOT / 'stdsr').rglob('*.py'))


def bash_commands(doc):
    """The command lines of the bash blocks of ``doc`` (continuations joined, comments cut), split at blanks (the
    flags and paths checked here hold no quoted blanks; optional ``[--flag]`` is split off its brackets)."""
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', (REPO_ROOT / doc).read_text(), re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split('#')[0].strip()
            if line:
                commands.append(line.replace('[', ' [').replace(']', '] ').split())
    return commands


def program_and_arguments(argv):
    """``('scripts/x.py', args)`` or ``('-m stdsr.train', args)`` of a python/torchrun command line, else None."""
    for i, arg in enumerate(argv):
        if arg.startswith('scripts/') and arg.endswith('.py'):
            return arg, argv[i + 1:]
        if arg == '-m' and i + 1 < len(argv) and argv[i + 1].startswith('stdsr'):
            return f'-m {argv[i + 1]}', argv[i + 2:]
    return None


@pytest.mark.parametrize('doc', DOCS)
def test_doc_commands_name_scripts_options_and_files_that_exist(doc):
    """Every script and module a doc runs exists, every flag it passes is one the package defines, every option
    file, script or doc it names is in the clone."""
    checked = 0
    for argv in bash_commands(doc):
        found = program_and_arguments(argv)
        if found is None:
            continue
        program, args = found
        if program.startswith('scripts/'):
            assert (REPO_ROOT / program).is_file(), f'{doc}: {program}'
        else:
            assert (REPO_ROOT / (program.split()[1].replace('.', '/') + '.py')).is_file(), f'{doc}: {program}'
        for arg in args:
            flag = FLAG.match(arg)
            if flag:
                name = flag[1]
                assert f"'{name}'" in PACKAGE_TEXT or f'"{name}"' in PACKAGE_TEXT, f'{doc}: {program} {name}'
            for part in arg.strip('\'"').split('=')[-1].split(','):
                path = re.match(r'[\w./-]*', part)[0]  # FILE.yml:network_t names a file and a key
                if path.startswith(('options/', 'scripts/', 'docs/')):
                    assert (REPO_ROOT / path).exists(), f'{doc}: {program} {path}'
        checked += 1
    assert checked or doc not in ('README.md', 'docs/deployment.md', 'docs/benchmark.md'), doc


def test_first_export_example_exports_a_network_make_demo_trains():
    exports = [program_and_arguments(a)[1] for a in bash_commands('docs/deployment.md')
               if (program_and_arguments(a) or ('', ))[0] == 'scripts/export_onnx.py']
    opt = exports[0][exports[0].index('--opt') + 1]
    assert opt.split('/')[-1] in {f for _, f, _ in STEPS} and opt.startswith(str(DEMO_OPTIONS.relative_to(REPO_ROOT)))


def test_deployment_table_defaults_exist_after_make_demo(demo_workspace, monkeypatch):
    """The first documented deployment-table command (the demo students') passes its input checks in a clone after
    `make demo` (its default real-video clips are the demo's own camera video, not a folder outside the clone); the
    later one reads the study's trained checkpoints."""
    from stdsr.tools import deployment_table
    monkeypatch.chdir(demo_workspace)
    argv = [program_and_arguments(a)[1] for a in bash_commands('docs/deployment.md')
            if (program_and_arguments(a) or ('', ))[0] == 'scripts/deployment_table.py'][0]
    args = deployment_table.parse_args(argv)
    assert args.real and args.real.startswith(args.demo)
    deployment_table.check_inputs(args)

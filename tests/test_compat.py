"""A plain ``import basicsr`` works wherever stdsr is installed, normally or with ``pip install -e .``: the wheels
carry the start-up alias (``stdsr_compat_functional_tensor.pth`` at their root, i.e. in site-packages)."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from e2e_helpers import REPO_ROOT

PTH = 'stdsr_compat_functional_tensor.pth'
MODULE = 'stdsr_compat_functional_tensor.py'
SOURCES = ('setup.py', 'setup.cfg', 'pyproject.toml', 'README.md', 'MANIFEST.in', PTH, MODULE, 'stdsr')


@pytest.fixture(scope='module')
def wheels(tmp_path_factory):
    """The normal and the editable wheel, built by setuptools' PEP 517 backend from a copy of the sources."""
    work = tmp_path_factory.mktemp('packaging')
    src = work / 'src'
    src.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy(REPO_ROOT / name, src / name)
    built = []
    for hook in ('build_wheel', 'build_editable'):  # one PEP 517 hook per process, as pip calls them
        (work / hook).mkdir()
        proc = subprocess.run([sys.executable, '-c', f'from setuptools import build_meta; import sys; '
                               f'print("WHEEL", build_meta.{hook}(sys.argv[1]))', str(work / hook)],
                              cwd=src, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (name, ) = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith('WHEEL ')]
        built.append(zipfile.ZipFile(work / hook / name))
    return built

def test_both_wheels_put_the_startup_alias_into_site_packages(wheels):
    normal, editable = wheels
    assert {PTH, MODULE} <= set(normal.namelist())
    assert PTH in editable.namelist()
    assert normal.read(PTH).decode().strip() == 'import stdsr_compat_functional_tensor'
    finder = next(n for n in editable.namelist() if n.endswith('_finder.py'))
    assert "'stdsr_compat_functional_tensor':" in editable.read(finder).decode()  # the module is found in editable mode


@pytest.mark.slow
def test_import_basicsr_alone_works_with_what_the_wheel_installs(wheels, tmp_path):
    normal, _ = wheels
    site_dir = tmp_path / 'site'
    for name in (PTH, MODULE):
        normal.extract(name, site_dir)
    probe = ('import site, sys; site.addsitedir(sys.argv[1]); import basicsr; '
             'import torchvision.transforms._functional_tensor as new; '
             'import torchvision.transforms.functional_tensor as old; '
             'assert old.rgb_to_grayscale is new.rgb_to_grayscale')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}  # no checkout on the path: the wheel's files
    proc = subprocess.run([sys.executable, '-c', probe, str(site_dir)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_alias_is_asked_last_and_installed_once():
    import stdsr_compat_functional_tensor as compat
    from importlib.machinery import PathFinder
    alias = next(f for f in sys.meta_path if isinstance(f, compat.RenamedModuleAlias))
    assert sys.meta_path.index(alias) > sys.meta_path.index(PathFinder)  # a real old module would be found first
    assert compat.install() is False and sum(isinstance(f, compat.RenamedModuleAlias) for f in sys.meta_path) == 1
    assert alias.find_spec('torchvision.transforms.functional_tensor').loader is alias
    assert alias.find_spec('torchvision.transforms.functional') is None


@pytest.mark.slow
def test_stdsr_of_an_editable_install_made_before_the_alias_module_existed_still_imports_basicsr(tmp_path):
    """Its finder maps ``stdsr`` alone and the checkout's root is not on sys.path: stdsr loads the module itself.
    ``python -S`` with site-packages on sys.path but no .pth file read: no start-up alias of this environment."""
    checkout = tmp_path / 'checkout'
    shutil.copytree(REPO_ROOT / 'stdsr', checkout / 'stdsr', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(REPO_ROOT / MODULE, checkout / MODULE)
    probe = ('import importlib.util, sys; root = sys.argv[1]; sys.path.append(sys.argv[2]); '
             'spec = importlib.util.spec_from_file_location("stdsr", root + "/stdsr/__init__.py", '
             'submodule_search_locations=[root + "/stdsr"]); stdsr = importlib.util.module_from_spec(spec); '
             'sys.modules["stdsr"] = stdsr; spec.loader.exec_module(stdsr); '
             'import basicsr, stdsr_compat_functional_tensor as alias; assert alias.__file__.startswith(root)')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    (tmp_path / 'elsewhere').mkdir()
    proc = subprocess.run([sys.executable, '-S', '-c', probe, str(checkout), sysconfig.get_paths()['purelib']],
                          cwd=tmp_path / 'elsewhere', env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

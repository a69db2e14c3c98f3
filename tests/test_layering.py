"""The import layering of docs/architecture.md: every package imports only packages below it, no package module
imports an entry point, and every script is a shim over a ``stdsr.tools`` module."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# lower number = lower layer; a module may import its own package and any package of a lower layer
LAYERS = {
    'stdsr.errors': 0, 'stdsr.version': 0, 'stdsr.compat': 0,
    'stdsr.utils': 1,
    'stdsr.runtime': 2, 'stdsr.metrics': 2,
    'stdsr.config': 3,
    'stdsr.archs': 4, 'stdsr.data': 4,
    'stdsr.distill': 5,
    'stdsr.losses': 6,
    'stdsr.models': 7,
    'stdsr.engine': 8,
    'stdsr.inference': 9,
    'stdsr.deploy': 10,
    'stdsr.tools': 11,
    'stdsr': 12, 'stdsr.train': 12, 'stdsr.test': 12,  # the package root (registration) and the entry points
}
ENTRY_POINTS = {'stdsr.train', 'stdsr.test'}
# ``import stdsr`` (registers everything with BasicSR) is what a runner needs before building from options
REGISTERING = {'stdsr.engine', 'stdsr.inference', 'stdsr.deploy', 'stdsr.tools', 'stdsr.train', 'stdsr.test'}


def package_of(module):
    parts = module.split('.')
    return '.'.join(parts[:2]) if len(parts) > 1 else module


def stdsr_imports(path):
    """(line, imported module) of every absolute ``stdsr`` import in the file, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == 'stdsr' or name.startswith('stdsr.'):
                yield node.lineno, name


def modules():
    for path in sorted((REPO / 'stdsr').rglob('*.py')):
        module = '.'.join(path.relative_to(REPO).with_suffix('').parts)
        yield path, module[:-len('.__init__')] if module.endswith('.__init__') else module


def test_every_package_has_a_layer():
    missing = sorted({package_of(m) for _, m in modules()} - set(LAYERS))
    assert not missing, f'packages without a layer in this test and docs/architecture.md: {missing}'


def test_imports_point_downward():
    upward = []
    for path, module in modules():
        own = package_of(module)
        for line, imported in stdsr_imports(path):
            target = package_of(imported)
            if imported == 'stdsr':
                ok = own in REGISTERING or own == 'stdsr'
            else:
                ok = target == own or LAYERS[target] < LAYERS[own]
            if imported in ENTRY_POINTS and module not in ENTRY_POINTS:
                ok = False
            if not ok:
                upward.append(f'{path.relative_to(REPO)}:{line} imports {imported}')
    assert not upward, 'imports against the layering:\n' + '\n'.join(upward)


def test_utils_is_generic():
    """utils/ imports nothing of the package but errors and utils: it must stay usable by every layer."""
    for path, module in modules():
        if package_of(module) == 'stdsr.utils':
            for line, imported in stdsr_imports(path):
                assert package_of(imported) in ('stdsr.utils', 'stdsr.errors'), f'{path}:{line} {imported}'


SCRIPTS = sorted(p for p in (REPO / 'scripts').rglob('*.py'))


@pytest.mark.parametrize('script', SCRIPTS, ids=[str(p.relative_to(REPO)) for p in SCRIPTS])
def test_scripts_are_shims_over_tools(script):
    tree = ast.parse(script.read_text())
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assert not defs, f'{script.name} defines {defs}: logic belongs in a stdsr.tools module'
    tools = [name for _, name in stdsr_imports(script) if name.startswith('stdsr.tools.')]
    command = 'stdsr.tools.' + '.'.join(script.relative_to(REPO / 'scripts').with_suffix('').parts)
    assert tools == [command], f'{script.name} must call the command module named as it, {command}; calls {tools}'
    assert 'main' in {n.name for n in ast.parse(Path(REPO, *command.split('.')).with_suffix('.py').read_text()).body
                      if isinstance(n, ast.FunctionDef)}, f'{command} has no main(argv)'
    code_lines = [l for l in script.read_text().split('"""', 2)[-1].splitlines() if l.strip() and not l.startswith('#')]
    assert len(code_lines) <= 12, f'{script.name} has {len(code_lines)} lines of code; a shim has a few'


def test_exceptions_live_in_errors():
    """Every public exception class of the package is defined in stdsr/errors.py (one tree: user errors vs bugs);
    a module may keep a private (``_``) exception for its own control flow."""
    stray = []
    for path, module in modules():
        if module == 'stdsr.errors':
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith('_') and (node.name.endswith('Error') or any(
                    getattr(b, 'id', '').endswith(('Error', 'Exception')) for b in node.bases)):
                stray.append(f'{path.relative_to(REPO)}:{node.lineno} {node.name}')
    assert not stray, 'exception classes outside stdsr/errors.py:\n' + '\n'.join(stray)


def test_networks_share_helpers_through_arch_util():
    """A network module imports no other network module: shared helpers live in stdsr/archs/arch_util.py (as
    BasicSR's do), so removing or changing one network cannot break another."""
    borrowed = []
    for path, module in modules():
        if package_of(module) == 'stdsr.archs' and module.endswith('_arch'):
            borrowed += [f'{path.relative_to(REPO)}:{line} imports {imported}'
                         for line, imported in stdsr_imports(path) if imported.endswith('_arch')]
    assert not borrowed, 'network modules importing other network modules:\n' + '\n'.join(borrowed)


def module_names():
    return {module for _, module in modules()}


def internal_edges(path, module, known):
    """Modules of the same package that ``module`` imports (``from pkg import sub`` counts as importing pkg.sub)."""
    own = package_of(module)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in known else node.module
                       for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        yield from (t for t in targets if t in known and t != module and package_of(t) == own)


def test_no_import_cycle_inside_a_package():
    """Modules of one package import each other one way only (function-level imports included): a cycle hides which
    module owns a concept, and only works while the imports happen to run in the right order."""
    known = module_names()
    graph = {module: set(internal_edges(path, module, known)) for path, module in modules()}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 'open'
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                cycles.append(' -> '.join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, 'import cycles inside a package:\n' + '\n'.join(cycles)

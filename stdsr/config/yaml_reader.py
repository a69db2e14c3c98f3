"""The one YAML reader of the package: option files, ``--force_yml`` values, plans, data set lists, arch files.

Option files and plans are shared between people like data, not like source code, so reading one must never run
anything: the loader is built on ``yaml.SafeLoader`` (BasicSR's ordered loader constructs ``!!python/...`` tags,
i.e. calls arbitrary functions). On top of it: ordered mappings, YAML 1.2 floats (``1e-8`` is a number) and a key
given twice is an error. Every failure is one line naming the file (or the override) and the line.
"""
import json
import math
import re
from collections import OrderedDict

import yaml

from stdsr.errors import OptionError


class SafeOptionLoader(yaml.SafeLoader):
    """SafeLoader with ordered mappings, YAML 1.2 floats and duplicate keys refused."""


SafeOptionLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$'), list('-+0123456789.'))


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice (raised inside the loader, turned into the caller's error class with its source)."""


def _mapping_without_duplicates(loader, node):
    """An ordered mapping; a key given twice is an error naming the key and both lines (YAML's default, last one
    wins, silently trains with a value the user may not be looking at)."""
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=False)
        line = key_node.start_mark.line + 1
        if key in seen:
            err = _DuplicateKey(problem=f"duplicate option key '{key}' on line {line} (first given on line "
                                f'{seen[key]})', problem_mark=key_node.start_mark)
            raise err
        seen[key] = line
    return OrderedDict(loader.construct_pairs(node))


SafeOptionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _one_line(err, source):
    """``source: line N: what is wrong`` for any YAML error (tags, syntax, duplicate keys)."""
    mark = getattr(err, 'problem_mark', None) or getattr(err, 'context_mark', None)
    where = f'{source}: line {mark.line + 1}' if mark is not None else source
    if isinstance(err, _DuplicateKey):
        return f'{source}: {err.problem}'
    if isinstance(err, yaml.constructor.ConstructorError):
        tag = re.search(r"tag '([^']*)'", str(err.problem or ''))
        if tag:
            shown = tag.group(1).replace('tag:yaml.org,2002:', '!!')
            return (f"{where}: the tag '{shown}' is not allowed (YAML read by stdsr is data: no Python objects, "
                    'nothing is executed)')
    problem = ' '.join(str(getattr(err, 'problem', None) or err).split())
    return f'{where}: not valid YAML: {problem}'


def read_yaml_text(text, source, error=OptionError):
    """Parse ``text`` safely; any YAML problem is ``error`` with one line naming ``source`` and the line."""
    try:
        return yaml.load(text, Loader=SafeOptionLoader)
    except yaml.YAMLError as err:
        raise error(_one_line(err, source)) from None


def read_yaml_file(path, error=OptionError, what='file'):
    """Read the YAML file ``path`` safely; a missing, unreadable or malformed file is one line naming it."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        raise error(f'{what} not found: {path}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f'{path}: cannot read this {what}: {getattr(err, "strerror", None) or err}') from None
    return read_yaml_text(text, path, error)


def yaml_value(value):
    """``value`` as one line of flow YAML that reads back as the same data (a label ``my run #2`` stays one
    string: unquoted, `` #`` would start a comment). For building ``--force_yml KEY=VALUE`` entries."""
    if value is None:
        return '~'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f'{value!r} cannot be passed as an option value')
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(yaml_value(v) for v in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join(f'{yaml_value(k)}: {yaml_value(v)}' for k, v in value.items()) + '}'
    raise TypeError(f'cannot pass a {type(value).__name__} as an option value')

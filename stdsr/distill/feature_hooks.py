"""Record intermediate features (F^SR) of a network by module path, without editing the network.

Distillation needs the last HR-resolution feature map of both student and teacher. Forward hooks let us take it
from any BasicSR arch (sliding-window or recurrent) through its dotted module path, so the archs stay unchanged
and their checkpoints stay loadable by plain BasicSR.
"""
import contextlib
import difflib

import torch
from torch import nn as nn
from stdsr.errors import UnknownModulePathError

__all__ = ['FSR_TAP', 'FeatureRecorder', 'UnknownModulePathError', 'fsr_tap', 'split_tap', 'stack_frames',
           'unwrap_network']

_WRAPPER_PREFIX = 'module.'
_TAP_SIDES = ('output', 'input')
# F^SR of every network: what its output convolution (the one that maps to 3 channels) receives. Taking the input of
# that conv, rather than the output of the layer before it, makes the tap independent of whether an activation
# follows that layer and whether it runs in place (EDVR's in-place LeakyReLU, VESPCN's out-of-place ReLU).
FSR_TAP = 'conv_last:input'


def unwrap_network(net):
    """Return the bare network inside DataParallel / DistributedDataParallel (or any ``.module`` wrapper).

    A plain ``nn.Module`` is unwrapped only when ``module`` is its sole child, so that a real network that merely
    has a sub-module called ``module`` is left alone.
    """
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(getattr(net, 'module', None), nn.Module):
        if not isinstance(net, wrappers) and [name for name, _ in net.named_children()] != ['module']:
            break
        net = net.module
    return net


def fsr_tap(net):
    """The F^SR tap of ``net``: its class's ``FSR_TAP`` if it declares one, else :data:`FSR_TAP`."""
    return getattr(unwrap_network(net), 'FSR_TAP', FSR_TAP)


def split_tap(tap):
    """``'conv_last:input'`` -> ``('conv_last', 'input')``; a bare path records the module's output.

    ``:input`` records the first positional input of the module (a forward pre-hook), ``:output`` (the default)
    its output.
    """
    path, sep, side = tap.rpartition(':')
    if not sep:
        return tap, 'output'
    if side not in _TAP_SIDES:
        raise ValueError(f'Tap "{tap}": the part after ":" must be one of {list(_TAP_SIDES)}, got "{side}"')
    return path, side


def resolve_module_path(modules, path):
    """Map a user path (maybe with leading ``module.`` from a wrapped checkpoint/config) to a key of ``modules``
    (``dict(net.named_modules())``); an unknown path is an :class:`UnknownModulePathError` listing the nearest
    names. The one resolver of module paths: hooks, taps and the KD baselines' tap checks all use it."""
    candidate = path
    while True:
        if candidate in modules:
            return candidate
        if not candidate.startswith(_WRAPPER_PREFIX):
            break
        candidate = candidate[len(_WRAPPER_PREFIX):]

    names = [name for name in modules if name]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
    if path.startswith(_WRAPPER_PREFIX):
        close += [c for c in difflib.get_close_matches(candidate, names, n=5, cutoff=0.5) if c not in close]
    hint = (f'nearest valid module names: {close}' if close else 'no similar module name found')
    raise UnknownModulePathError(
        f'Unknown module path "{path}" in {type(modules[""]).__name__}; {hint}. '
        'Hint: list the valid paths with `[name for name, _ in net.named_modules()]` and use the dotted name '
        'of the layer whose output is F^SR (the last HR feature map before the output conv).')


class FeatureRecorder:
    """Record the outputs (or inputs) of named sub-modules on every call, in call order.

    Every call is kept (not only the last) because recurrent networks such as BasicVSR call their HR layer once
    per frame inside one forward; see :func:`stack_frames` to turn the calls into per-frame features.
    A module that returns a tuple is recorded by its first element (the feature tensor in common archs).
    Hooks only append to a Python list: they add no parameters or buffers, so the state_dict is unchanged.

    Args:
        net (nn.Module): Network, possibly wrapped in DataParallel / DistributedDataParallel.
        paths (list[str]): Taps: dotted module paths, e.g. ``['conv_hr']`` or ``['body.3.conv1']``, recording the
            module's output, or ``'<path>:input'`` recording what the module receives (its first positional input;
            F^SR is ``'conv_last:input'``, see :data:`FSR_TAP`). A leading ``module.`` is accepted. ``records`` is
            keyed by the taps exactly as given.
        detach (bool): Store detached tensors (for the frozen teacher; saves keeping its graph). Default: False.

    Raises:
        UnknownModulePathError: A path does not exist; the message lists the nearest valid names.
    """

    def __init__(self, net, paths, detach=False):
        if isinstance(paths, str):
            paths = [paths]
        paths = list(paths)
        if len(set(paths)) != len(paths):
            raise ValueError(f'Duplicate module paths given to FeatureRecorder: {paths}')
        self.net = unwrap_network(net)
        self.detach = detach
        modules = dict(self.net.named_modules())
        # resolve every path before registering any hook, so a bad path leaves the network untouched
        resolved = {}
        for tap in paths:
            path, side = split_tap(tap)
            resolved[tap] = (resolve_module_path(modules, path), side)
        self.paths = paths
        self.records = {path: [] for path in paths}
        self.enabled = True
        self._handles = []
        for tap, (name, side) in resolved.items():
            if side == 'input':
                handle = modules[name].register_forward_pre_hook(self._make_input_hook(tap))
            else:
                handle = modules[name].register_forward_hook(self._make_hook(tap))
            self._handles.append(handle)

    def _record(self, path, value):
        if not self.enabled:
            return
        if isinstance(value, (tuple, list)):
            value = value[0]
        self.records[path].append(value.detach() if self.detach else value)

    def _make_hook(self, path):

        def hook(module, inputs, output):
            self._record(path, output)

        return hook

    def _make_input_hook(self, path):

        def pre_hook(module, inputs):
            self._record(path, inputs)

        return pre_hook

    def clear(self):
        """Drop all recordings (call before each forward so calls from different iterations do not mix)."""
        for path in self.records:
            self.records[path] = []

    def pop(self, path):
        """Return the calls recorded for ``path`` and forget them."""
        if path not in self.records:
            raise UnknownModulePathError(f'Path "{path}" is not recorded; recorded paths: {self.paths}')
        calls = self.records[path]
        self.records[path] = []
        return calls

    @contextlib.contextmanager
    def paused(self):
        """Record nothing inside the block (inference of a hooked student must not pile up HR features)."""
        previous, self.enabled = self.enabled, False
        try:
            yield self
        finally:
            self.enabled = previous

    def remove(self):
        """Remove the hooks (idempotent); recordings made so far stay readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.remove()
        return False


def stack_frames(calls, batch, num_frames):
    """Assemble the recorded calls of ONE forward into per-frame features of shape (B, N, C, H, W).

    Two layouts are recognised:

    * sliding-window networks (EDVR, ...) process the N windows of a clip as one batch: ONE call of shape
      (B*N, C, H, W). The caller must have flattened its (B, N) window tensor with B outer, i.e. row
      ``b * N + n`` is frame ``n`` of clip ``b`` (what ``x.view(B * N, ...)`` gives), so ``reshape(B, N, ...)``
      restores it.
    * recurrent networks (BasicVSR, ...) call the layer N times, once per frame in temporal order, with
      (B, C, H, W) each; the calls are stacked on dim 1.

    With N == 1 both layouts coincide. Anything else raises ValueError naming the counts and shapes.
    """
    if isinstance(calls, torch.Tensor):
        calls = [calls]
    calls = list(calls)
    shapes = [tuple(c.shape) for c in calls]
    if len(calls) == 1 and calls[0].dim() >= 1 and calls[0].shape[0] == batch * num_frames:
        return calls[0].reshape(batch, num_frames, *calls[0].shape[1:])
    if (len(calls) == num_frames and all(c.dim() >= 1 and c.shape[0] == batch for c in calls)
            and len(set(shapes)) == 1):
        return torch.stack(calls, dim=1)
    raise ValueError(f'Cannot assemble per-frame features for batch={batch}, num_frames={num_frames} from '
                     f'{len(calls)} recorded call(s) with shapes {shapes}: expected either 1 call of shape '
                     f'({batch * num_frames}, C, H, W) (sliding window) or {num_frames} calls of equal shape '
                     f'({batch}, C, H, W) (recurrent). Was the recorder cleared before this forward?')

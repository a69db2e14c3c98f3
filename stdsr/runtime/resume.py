"""Which checkpoint a run resumes from: a training state together with every network file of its iteration.

BasicSR resumes from ``training_states/<iter>.state`` and loads ``models/net_<x>_<iter>.pth`` only if it is
there; with the network file gone (pruned by hand, lost in a copy) the run went on from freshly initialised
weights, logged "Resuming training from ... iter N" and exited 0 with a worse model. Here a state counts only
with every network the run saves (each ``network_*`` but the frozen teacher ``network_t``) of the same
iteration, readable and fitting the networks of the option file. ``--auto_resume`` takes the newest complete
pair (saying which incomplete ones it skipped); an explicit ``path.resume_state`` without its networks stops.

A state also holds the options it was trained with (``run_options``). A resumed run is the same run: options that
decide what is trained (networks, distillation terms and their shares, pixel loss, optimizer, schedule, EMA, seed)
must not change, or the run would silently mix two recipes (a ConvLSTM of another width failed with a long
state_dict traceback; a new ``loss_share`` was ignored for the calibrated lambda; a new ``form`` switched the
loss). Those are refused in one line naming every difference; any other change (data paths, logging, validation,
``total_iter`` within the saved schedule) is logged in one line.
"""
import os
import re
from copy import deepcopy
from os import path as osp

from stdsr.errors import OptionError
from stdsr.runtime.checkpoint import CheckpointError, load_training_state
from stdsr.runtime.checkpoint import WeightsError, check_state_dict_fits, read_weights

_STATE_RE = re.compile(r'^(?P<iter>\d+)\.state$')
UNSAVED_NETWORKS = ('network_t', )  # the frozen teacher keeps its own path.pretrain_network_t


def saved_network_keys(opt):
    return [k for k in opt if str(k).startswith('network_') and k not in UNSAVED_NETWORKS]


def network_files(opt, resume_iter):
    """``{network key: models/net_<suffix>_<iter>.pth}`` for every network the run saves."""
    return {key: osp.join(opt['path']['models'], f"net_{key[len('network_'):]}_{resume_iter}.pth")
            for key in saved_network_keys(opt)}


def state_iters(states_dir):
    """Iterations of the ``<iter>.state`` files in ``states_dir``, newest first."""
    if not osp.isdir(states_dir):
        return []
    return sorted((int(m.group('iter')) for m in map(_STATE_RE.match, os.listdir(states_dir)) if m), reverse=True)


def _incomplete_reason(opt, resume_iter):
    """Why the networks of ``resume_iter`` cannot be resumed from (missing or unreadable file), or None."""
    for key, path in network_files(opt, resume_iter).items():
        if not osp.isfile(path):
            return f'{path} is missing'
        try:
            read_weights(path, prefer=('params', ), what=f'{key} checkpoint')
        except WeightsError as err:
            return str(err)
    return None


def check_networks_fit(opt, resume_iter):
    """Every saved network of ``resume_iter`` fits the network the option file builds (a changed
    ``network_g`` after the run started is an error naming the file, not a traceback from strict loading)."""
    from basicsr.archs import build_network
    for key, path in network_files(opt, resume_iter).items():
        state, used = read_weights(path, prefer=('params', ), what=f'{key} checkpoint')
        net = build_network(deepcopy(opt[key]))
        check_state_dict_fits(net, state, f'resuming: {path} [{used}] for {key} ({opt[key]["type"]}), changed '
                                          'since the run was saved?')


def choose_resume_state(opt, device='cpu'):
    """``(state dict or None, notes to log)``; ``opt['path']['resume_state']`` is set to the chosen file."""
    notes = []
    paths = opt['path']
    if opt.get('auto_resume'):
        states_dir = paths['training_states']
        skipped = []
        for resume_iter in state_iters(states_dir):
            state_path = osp.join(states_dir, f'{resume_iter}.state')
            reason = _incomplete_reason(opt, resume_iter)
            if reason is None:
                try:
                    state = load_training_state(state_path, device=device)
                except CheckpointError as err:
                    reason = str(err)
            if reason is not None:
                skipped.append(f'{resume_iter}.state ({reason})')
                continue
            if skipped:
                notes.append(f"--auto_resume: skipped incomplete checkpoints: {'; '.join(skipped)}")
            paths['resume_state'] = state_path
            _check_iter(opt, state, state_path, resume_iter, notes)
            return state, notes
        if skipped:
            raise CheckpointError(f'--auto_resume: no complete checkpoint in {states_dir} (a training state with '
                                  f"its network files of the same iteration): {'; '.join(skipped)}")
    path = paths.get('resume_state')
    if not path:
        return None, notes
    state = load_training_state(path, device=device)
    resume_iter = state.get('iter') if isinstance(state, dict) else None
    if not isinstance(resume_iter, int):
        raise CheckpointError(f'resume state {path} is not a training state (no iteration in it)')
    reason = _incomplete_reason(opt, resume_iter)
    if reason is not None:
        raise CheckpointError(f'resume state {path} (iter {resume_iter}) cannot be resumed: {reason}; resuming '
                              'needs the state and the networks of the same iteration')
    _check_iter(opt, state, path, resume_iter, notes)
    return state, notes


def _check_iter(opt, state, path, resume_iter, notes):
    total_iter = int((opt.get('train') or {}).get('total_iter', resume_iter))
    if resume_iter > total_iter:  # ran no step, then labelled the final validation of this model 'iter <total>'
        raise OptionError(f"resume state {path} is at iter {resume_iter}, past 'train.total_iter: {total_iter}': "
                          'nothing is left to train; raise train.total_iter to continue the run, or evaluate its '
                          f'models/net_g_{resume_iter}.pth with stdsr.test')
    notes.extend(check_saved_options(opt, state, path, resume_iter))
    check_networks_fit(opt, resume_iter)


# options a run may not change when it resumes: they decide what is trained and how (prefixes of dotted keys)
FIXED_ON_RESUME = ('model_type', 'scale', 'manual_seed', 'network_', 'distill', 'train.optim_', 'train.scheduler',
                   'train.pixel_opt', 'train.ema_decay')
# entries of the options dict that describe the process or where files go, not the training
NOT_COMPARED = ('name', 'path', 'is_train', 'auto_resume', 'root_path', 'num_gpu', 'dist', 'dist_backend', 'rank',
                'world_size')


def run_options(opt):
    """The options that describe a training run, as plain data to keep in its training states."""
    return _plain({k: v for k, v in opt.items() if k not in NOT_COMPARED})


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _flatten(value, prefix=''):
    if isinstance(value, dict) and value:
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f'{prefix}.{key}' if prefix else key))
        return flat
    return {prefix: value}


def option_differences(saved, new):
    """``[(dotted key, saved value, new value)]`` of every option that differs (absent: ``'(absent)'``)."""
    old_flat, new_flat = _flatten(saved), _flatten(run_options(new))
    keys = list(old_flat) + [k for k in new_flat if k not in old_flat]
    return [(k, old_flat.get(k, '(absent)'), new_flat.get(k, '(absent)')) for k in keys
            if old_flat.get(k, '(absent)') != new_flat.get(k, '(absent)')]


def _fixed(key):
    return any(key.startswith(p) if p.endswith('_') else key == p or key.startswith(p + '.') for p in FIXED_ON_RESUME)


def check_saved_options(opt, state, path, resume_iter):
    """Refuse a resume whose options change what is trained; return the notes naming the other changes."""
    saved = state.get('options') if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        return [f'resume state {path} holds no options (saved by an older stdsr): changed options cannot be checked']
    diffs = option_differences(saved, opt)
    shown = [f'{key} {old!r} -> {new!r}' for key, old, new in diffs]
    fixed = [line for line, (key, _, _) in zip(shown, diffs) if _fixed(key)]
    if fixed:
        raise OptionError(f"resume state {path}: options differ from the saved run in what is trained: "
                          f"{', '.join(fixed)}; a resumed run keeps its recipe: restore these values, or start a new "
                          f"run (another name) from its weights with path.pretrain_network_g: "
                          f"{network_files(opt, resume_iter).get('network_g', 'models/net_g_<iter>.pth')}")
    return [f"resuming with options changed since {path} was saved: {', '.join(shown)}"] if shown else []

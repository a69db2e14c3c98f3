"""The ``distill`` section of an option file (keys, types, ranges, balance and term options), checked in one place.

Option validation calls it before anything is built, so a typo in a distillation term fails in one line before the
data loaders, the teacher or a run folder exist; the model and the comparison harness call the same function.
"""
import inspect

from stdsr.config.keys import check_keys
from stdsr.errors import OptionError

DISTILL_KEYS = {'student_layer', 'teacher_layer', 'num_frame', 'losses', 'teacher_inference_mode', 'balance'}
BALANCE_KEYS = {'calibration_iters', 'start_iter', 'track'}
LAYER_KEYS = ('student_layer', 'teacher_layer')
TERM_KEYS = set(LAYER_KEYS) | {'type', 'loss_share'}
DEFAULT_CALIBRATION_ITERS = 50


def check_distill_options(opt, src=''):
    """Raise OptionError naming the first wrong ``distill`` option of ``opt``; return the section."""
    from basicsr.utils.registry import LOSS_REGISTRY

    distill_opt = opt.get('distill')
    if not distill_opt or not distill_opt.get('losses'):
        raise OptionError(f"{src}option 'distill.losses' is required for DistillVSRModel")
    check_keys(distill_opt, 'distill', DISTILL_KEYS, source=src)
    balance = distill_opt.get('balance') or {}
    check_keys(balance, 'distill.balance', BALANCE_KEYS, source=src)
    for key, least in (('calibration_iters', 1), ('start_iter', 0)):
        value = balance.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise OptionError(f"{src}option 'distill.balance.{key}' must be an integer >= {least}, got {value!r}")
    if not isinstance(balance.get('track', False), bool):
        raise OptionError(f"{src}option 'distill.balance.track' must be true or false, got {balance['track']!r}")
    for name, loss_opt in distill_opt['losses'].items():
        where = f'distill.losses.{name}'
        if 'type' not in loss_opt:
            raise OptionError(f"{src}option '{where}' has no 'type'")
        try:
            loss_cls = LOSS_REGISTRY.get(loss_opt['type'])
        except KeyError as err:
            raise OptionError(f"{src}option '{where}.type': {err}") from None
        valid = set(inspect.signature(loss_cls.__init__).parameters) - {'self'}
        check_keys(loss_opt, where, valid | TERM_KEYS, source=src)
        if loss_opt.get('reduction', 'mean') not in ('mean', 'sum'):
            raise OptionError(f"{src}option '{where}.reduction' is '{loss_opt['reduction']}': a training loss must "
                              "be one number; use 'mean' or 'sum'")
        if 'loss_share' in loss_opt and 'loss_weight' in loss_opt:
            raise OptionError(f"{src}options '{where}.loss_weight' and '{where}.loss_share' exclude each other: "
                              'give a fixed weight or a share of the pixel loss, not both')
        share = loss_opt.get('loss_share')
        if share is not None and not (isinstance(share, (int, float)) and share > 0):
            raise OptionError(f"{src}option '{where}.loss_share' must be a positive number, got {share!r}")
        for key in LAYER_KEYS:
            if loss_opt.get(key, distill_opt.get(key)) is None:
                raise OptionError(f"{src}option 'distill.{key}' (or '{where}.{key}') is required")
    return distill_opt


def balance_window(distill_opt):
    """(calibration_iters, start_iter, track) of ``distill.balance``, defaults filled."""
    balance = distill_opt.get('balance') or {}
    return (balance.get('calibration_iters', DEFAULT_CALIBRATION_ITERS), balance.get('start_iter', 0),
            balance.get('track', False))

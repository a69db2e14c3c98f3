"""Running the comparison: train each (run, seed, budget) with ``python -m stdsr.train`` in a subprocess, evaluate
its student and the teacher in-process on every test set; a finished run's ``result.json`` is never redone.
"""
import contextlib
import io
import os
import subprocess
import sys
import time
from collections import OrderedDict
from copy import deepcopy
from typing import NamedTuple
from os import path as osp

import yaml

import stdsr  # noqa: F401  (patches torchvision for basicsr; registers archs, datasets, losses, models)
from stdsr.errors import CompareError, RunLockedError
from stdsr.runtime.resume import state_iters
from stdsr.runtime.run_lock import RunLock
from stdsr.config.options import apply_force_yml, load_yaml
from stdsr.utils.atomic_files import write_json_atomic, write_text_atomic
from stdsr.utils.file_hash import sha256_of
from stdsr.tools.comparison.plan import read_json, plain, digest, log_tail, run_name, harness_overrides
from stdsr.tools.comparison import records as run_records


def resolve_teacher(runs, settings):
    """(network options, checkpoint, temporal mode or None) of the teacher, or None when there is none."""
    with_teacher = [r for r in runs if 'network_t' in r['opt']]
    nets = {digest(r['opt']['network_t']) for r in with_teacher}
    if len(nets) > 1:
        raise CompareError('the distilled runs use different teachers (network_t differs): ' +
                           ', '.join(r['opt_path'] for r in with_teacher))
    ckpt = settings['teacher_ckpt']
    if not ckpt:
        ckpts = {osp.abspath(r['opt']['path']['pretrain_network_t']) for r in with_teacher
                 if (r['opt'].get('path') or {}).get('pretrain_network_t')}
        if len(ckpts) > 1:
            raise CompareError(f'the distilled runs use different teacher checkpoints {sorted(ckpts)}; give '
                               '--teacher-ckpt so that every run learns from the same teacher')
        ckpt = ckpts.pop() if ckpts else None
    if with_teacher:
        net_opt = with_teacher[0]['opt']['network_t']
        temporal = (with_teacher[0]['opt'].get('temporal') or {}).get('network_t')
    elif settings['teacher_opt']:
        teacher_opt = load_yaml(settings['teacher_opt'])
        if 'network_g' not in teacher_opt:
            raise CompareError(f"{settings['teacher_opt']}: no network_g to use as the teacher")
        net_opt = teacher_opt['network_g']
        temporal = (teacher_opt.get('temporal') or {}).get('network_g')
    else:
        return None
    if not ckpt:
        return None
    if not osp.isfile(ckpt):
        raise CompareError(f'teacher checkpoint not found: {ckpt}')
    return {'network': plain(net_opt), 'ckpt': osp.abspath(ckpt), 'temporal': temporal}


# ------------------------------------------------------------------------------------------------ train / eval
def launch_command(opt_path, entries, nproc):
    if nproc and int(nproc) > 1:
        return [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={int(nproc)}',
                '-m', 'stdsr.train', '-opt', opt_path, '--auto_resume', '--launcher', 'pytorch', '--force_yml',
                *entries]
    return [sys.executable, '-m', 'stdsr.train', '-opt', opt_path, '--auto_resume', '--force_yml', *entries]


def train_run(run, entries, run_dir, nproc):
    """``python -m stdsr.train`` in a subprocess (resuming an interrupted run); its output goes to a log file."""
    log_path = osp.join(run_dir, 'train_stdout.log')
    os.makedirs(run_dir, exist_ok=True)
    cmd = launch_command(run['opt_path'], entries, nproc)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'a') as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise CompareError(f"run '{osp.basename(run_dir)}' ({run['opt_path']}) failed with exit code "
                           f'{proc.returncode}; last lines of {log_path}:\n{log_tail(log_path)}')


def metrics_options(opt):
    """PSNR and SSIM on Y with the option file's crop border (0 if it has none)."""
    metrics = ((opt.get('val') or {}).get('metrics') or {})
    crop = next((m.get('crop_border') for m in metrics.values() if 'crop_border' in m), 0)
    return OrderedDict(psnr={'type': 'calculate_psnr', 'crop_border': crop, 'test_y_channel': True},
                       ssim={'type': 'calculate_ssim', 'crop_border': crop, 'test_y_channel': True})


class _QuietConsole:
    """Keep BasicSR's console logging at warnings while ``stdsr.test`` runs in this process (its log file keeps all)."""

    def __enter__(self):
        import logging

        from basicsr.utils import get_root_logger
        self.handlers = [(h, h.level) for h in get_root_logger().handlers if type(h) is logging.StreamHandler]
        for handler, _ in self.handlers:
            handler.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc):
        for handler, level in self.handlers:
            handler.setLevel(level)
        return False


def evaluate(name, network, temporal, ckpt, param_key, tests, metrics, scale, out_dir, num_gpu='auto'):
    """Evaluate one network on the test sets ``{name: dataset options}`` with ``stdsr.test`` in one call.

    Returns ``{test set name: {'dataset', 'average', 'per_clip'}}`` (log and metrics.md under ``out_dir``).
    """
    from stdsr.engine.testing import test_pipeline

    os.makedirs(out_dir, exist_ok=True)
    test_opt = {
        'name': name, 'model_type': 'ClipVSRModel', 'scale': scale, 'num_gpu': num_gpu,
        'datasets': {f'test_{i + 1}': plain(test) for i, test in enumerate(tests.values())},
        'network_g': plain(network),
        'path': {'pretrain_network_g': ckpt, 'param_key_g': param_key, 'strict_load_g': True,
                 'results_root': osp.join(out_dir, 'results')},
        'val': {'save_img': False, 'metrics': plain(metrics)},
    }
    if temporal:
        test_opt['temporal'] = {'network_g': temporal}
    opt_path = osp.join(out_dir, 'test.yml')
    write_text_atomic(opt_path, yaml.safe_dump(test_opt, sort_keys=False))
    try:
        with _QuietConsole(), contextlib.redirect_stdout(io.StringIO()):  # its table is in metrics.md
            results = test_pipeline(['-opt', opt_path], root_path=out_dir)
    except Exception as err:  # noqa: BLE001  (any failure of one evaluation is reported with its cause)
        raise CompareError(f"evaluation of '{name}' ({opt_path}) failed: {type(err).__name__}: {err}") from err
    finally:
        if 'torch' in sys.modules and sys.modules['torch'].cuda.is_available():
            sys.modules['torch'].cuda.empty_cache()  # the next training runs in another process
    by_set = OrderedDict()
    for set_name, result in zip(tests, results):
        if not result.get('average'):
            raise CompareError(f"evaluation of '{name}' on {set_name} gave no metrics: does it have GT frames?")
        by_set[set_name] = plain(result)
    return by_set


def checkpoint_of(exp_root, opt):
    ckpt = osp.join(exp_root, 'models', 'net_g_latest.pth')
    param_key = 'params_ema' if (opt['train'].get('ema_decay') or 0) > 0 else 'params'
    return ckpt, param_key


class RunSpec(NamedTuple):
    """One (run, seed, budget) resolved: where it lives, how it is launched, and the ``config`` its result.json
    must match to be reused."""
    name: str
    run_dir: str
    entries: list  # --force_yml entries: the plan's, then the harness's
    opt: dict  # the option file with those entries applied
    config: dict
    seed: int
    iters: int


def run_config(run, seed, iters, settings):
    """The :class:`RunSpec` of one (run, seed, budget)."""
    name = run_name(run['label'], seed, iters)
    run_dir = osp.join(settings['work_dir'], 'runs', name)
    entries = run['user_force'] + harness_overrides(run['opt'], name, seed, iters, osp.join(run_dir, 'train'),
                                                    settings)
    opt = load_yaml(run['opt_path'])
    apply_force_yml(opt, entries)
    where = deepcopy(opt)
    where['path'].pop('experiments_root', None)  # the configuration, not where it is stored
    config = {'opt': digest(where), 'data': digest(run['signature']), 'seed': seed, 'iters': iters}
    return RunSpec(name, run_dir, entries, opt, config, seed, iters)


def finished_result(run, seed, iters, settings, report):
    """The result of a finished run (as ``do_run`` would reuse it), or None when it has not finished."""
    spec = run_config(run, seed, iters, settings)
    result_path = osp.join(spec.run_dir, 'result.json')
    if osp.isfile(result_path):
        return reuse_result(result_path, spec, run, settings, report)
    return recorded_result(spec, settings, report)


def recorded_result(spec, settings, report):
    """The committed record of this run when ``records`` has one with its configuration, else None."""
    record = run_records.find_record(settings.get('records'), spec.name, spec.config)
    if record is not None:
        report['reused'].append(spec.name)
    return record


def do_run(run, seed, iters, settings, report):
    """Train (or resume) and evaluate one run unless its result (in the work dir or the committed records) is
    already there; returns the result dict."""
    spec = run_config(run, seed, iters, settings)
    result_path = osp.join(spec.run_dir, 'result.json')
    if osp.isfile(result_path):
        return reuse_result(result_path, spec, run, settings, report)
    recorded = recorded_result(spec, settings, report)
    if recorded is not None:
        return recorded
    try:  # one harness per run: a second one is refused before it writes a line into this run's log
        lock = RunLock(spec.run_dir, 'comparison run').acquire()
    except RunLockedError as err:
        raise CompareError(str(err)) from None
    try:
        if osp.isfile(result_path):  # finished by the process that held the lock
            return reuse_result(result_path, spec, run, settings, report)
        return train_and_evaluate(run, spec, settings, report)
    finally:
        lock.release()


def reuse_result(result_path, spec, run, settings, report):
    result = read_json(result_path, 'result')
    if result.get('config') != spec.config:
        raise CompareError(f'{result_path} holds a finished run with another configuration (option file, '
                           'overrides or data changed since); use another --work-dir or move that folder away')
    report['reused'].append(spec.name)
    if not settings.get('records') or not osp.isfile(run_records.record_path(settings['records'], spec.name)):
        save_record(result, run, spec, settings)  # a run finished before its plan kept records gets its record now
    return result


def newest_state_iter(exp_root):
    """Iteration of the newest training state a run folder holds (0: none), i.e. where an auto-resumed training
    starts, so that its wall time is not read as the cost of the whole run."""
    return next(iter(state_iters(osp.join(exp_root, 'training_states'))), 0)


def save_record(result, run, spec, settings):
    """Write (or refresh) the committed record of a finished run when the plan keeps records."""
    if settings.get('records') and not settings.get('report_only'):
        done_path = osp.join(spec.run_dir, 'train_done.json')
        done = read_json(done_path, 'training marker') if osp.isfile(done_path) else {}
        record = run_records.make_record(result, run, spec, osp.join(spec.run_dir, 'train'),
                                         done.get('train_seconds'), done.get('train_from_iter'))
        run_records.write_record(settings['records'], spec.name, record)


def train_and_evaluate(run, spec, settings, report):
    """Train the run unless a matching finished training is there, then evaluate it and write its result.json."""
    exp_root = osp.join(spec.run_dir, 'train')
    done_path = osp.join(spec.run_dir, 'train_done.json')
    ckpt, param_key = checkpoint_of(exp_root, spec.opt)
    if not (osp.isfile(done_path) and read_json(done_path, 'training marker').get('config') == spec.config
            and osp.isfile(ckpt)):
        print(f'[compare] training {spec.name} ({run["opt_path"]})', flush=True)
        start, from_iter = time.time(), newest_state_iter(exp_root)
        train_run(run, spec.entries, spec.run_dir, settings['nproc'])
        write_json_atomic(done_path, {'config': spec.config, 'train_seconds': time.time() - start,
                                      'train_from_iter': from_iter})
        report['trained'].append(spec.name)
    print(f'[compare] evaluating {spec.name}', flush=True)
    opt = spec.opt
    evals = evaluate(spec.name, opt['network_g'], (opt.get('temporal') or {}).get('network_g'), ckpt, param_key,
                     run['test'], metrics_options(run['opt']), opt.get('scale'), osp.join(spec.run_dir, 'eval'))
    result = {'label': run['label'], 'opt_file': run['opt_path'], 'seed': spec.seed, 'iters': spec.iters,
              'config': spec.config, 'baseline': run['is_baseline'], **eval_fields(evals), 'checkpoint': ckpt,
              'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_json_atomic(osp.join(spec.run_dir, 'result.json'), result)
    save_record(result, run, spec, settings)
    report['evaluated'].append(spec.name)
    return result


def eval_fields(evals):
    """Result fields: every test set under 'evals'; the first one also as 'dataset'/'metrics'/'per_clip'."""
    first = next(iter(evals.values()))
    return {'evals': {name: {'dataset': res['dataset'], 'metrics': res['average'], 'per_clip': res['per_clip']}
                      for name, res in evals.items()},
            'dataset': first['dataset'], 'metrics': first['average'], 'per_clip': first['per_clip']}


def save_teacher_record(result, settings):
    if settings.get('records') and not settings.get('report_only'):
        run_records.write_record(settings['records'], run_records.TEACHER_RECORD[:-len('.json')], result)


def do_teacher(teacher, run, settings, report):
    """Evaluate the teacher once (cached in teacher/result.json and in the records, keyed by the checkpoint's
    content, the network and the test sets)."""
    config = {'ckpt_sha256': sha256_of(teacher['ckpt']), 'network': digest(teacher['network']),
              'test': digest(run['signature']['test'])}
    out_dir = osp.join(settings['work_dir'], 'teacher')
    result_path = osp.join(out_dir, 'result.json')
    if osp.isfile(result_path):
        result = read_json(result_path, 'result')
        if result.get('config') == config:
            report['reused'].append('teacher')
            save_teacher_record(result, settings)
            return result
    recorded = run_records.find_teacher_record(settings.get('records'), config)
    if recorded is not None:
        report['reused'].append('teacher')
        return recorded
    if settings.get('report_only'):
        return None
    print(f"[compare] evaluating the teacher ({teacher['ckpt']})", flush=True)
    evals = evaluate('teacher', teacher['network'], teacher['temporal'], teacher['ckpt'], None, run['test'],
                     metrics_options(run['opt']), run['opt'].get('scale'), out_dir)
    result = {'label': 'teacher', 'config': config, 'ckpt': osp.relpath(teacher['ckpt']), **eval_fields(evals),
              'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_json_atomic(result_path, result)
    save_teacher_record(result, settings)
    report['evaluated'].append('teacher')
    return result

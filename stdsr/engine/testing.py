"""``python -m stdsr.test -opt FILE.yml``: evaluate a trained network on every ``datasets.test_*`` set.

Prints and writes (``results/<name>/metrics.md``) the PSNR/SSIM table: per clip, and the average over
clips as the VSR literature reports it. Runs on CPU or CUDA; only the student network is built. The data, the
checkpoint and the results folder are checked before an earlier ``results/<name>`` is archived; bad input prints
one line (``stdsr.test: error: ...``; ``--debug`` or ``STDSR_DEBUG=1`` for the traceback).
"""
import os
import time
from os import path as osp

import stdsr  # noqa: F401  (patches torchvision for basicsr; registers archs, datasets, losses, models)
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.utils import get_env_info
from basicsr.utils.misc import mkdir_and_rename
from basicsr.utils.options import dict2str

from stdsr.runtime.determinism import determinism_from_options
from stdsr.runtime.logger import add_log_file
from stdsr.runtime.dist import init_dist_from_options
from stdsr.config.options import parse_options
from stdsr.runtime.run_lock import RunLock
from stdsr.utils.atomic_files import write_text_atomic
from stdsr.runtime.preflight import check_launcher, check_pretrained_networks, decode_first_sample
from stdsr.utils.output_paths import check_writable_dir


def format_results_table(results):
    """Markdown table of ``[{'dataset', 'per_clip', 'average'}]`` validation results."""
    metric_names = []
    for res in results:
        metric_names += [m for m in res['average'] if m not in metric_names]
    lines = ['| dataset | clip | ' + ' | '.join(metric_names) + ' |', '|---|---|' + '---|' * len(metric_names)]
    for res in results:
        for clip, values in res['per_clip'].items():
            lines.append(f"| {res['dataset']} | {clip} | " +
                         ' | '.join(f'{values[m]:.4f}' if m in values else '' for m in metric_names) + ' |')
        lines.append(f"| {res['dataset']} | **average** | " +
                     ' | '.join(f"**{res['average'][m]:.4f}**" if m in res['average'] else '' for m in metric_names) +
                     ' |')
    return '\n'.join(lines)


def test_pipeline(argv=None, root_path=None):
    opt, args = parse_options(argv, is_train=False, root_path=root_path)
    check_launcher(args.launcher, 'stdsr.test', args.opt)
    init_dist_from_options(opt, args.launcher)
    determinism_from_options(opt, is_train=False)
    test_sets = []
    # data, checkpoints, model and the results folder are checked before results/<name> is archived
    for phase, dataset_opt in sorted(opt.get('datasets', {}).items()):
        dataset = build_dataset(dataset_opt)
        decode_first_sample(dataset, phase)
        test_sets.append(build_dataloader(dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist']))
    check_pretrained_networks(opt)
    model = build_model(opt)
    lock = None
    if opt['rank'] == 0:
        check_writable_dir(opt['path']['results_root'], 'results folder')
        lock = RunLock(opt['path']['results_root'], 'results folder').acquire()  # before the archive
    try:
        return _test_locked(opt, model, test_sets)
    finally:
        if lock is not None:
            lock.release()


def _test_locked(opt, model, test_sets):
    if opt['rank'] == 0:
        mkdir_and_rename(opt['path']['results_root'])
        os.makedirs(opt['path']['visualization'], exist_ok=True)
    log_file = osp.join(opt['path']['log'], f"test_{opt['name']}_{time.strftime('%Y%m%d_%H%M%S')}.log")
    logger = add_log_file(log_file if opt['rank'] == 0 else None)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    save_img = (opt.get('val') or {}).get('save_img', False)
    results = []
    for loader in test_sets:
        logger.info(f"Testing {loader.dataset.opt['name']}...")
        results.append(model.validation(loader, current_iter=opt['name'], tb_logger=None, save_img=save_img))
    table = format_results_table([r for r in results if r['average']])
    if opt['rank'] == 0 and table:
        write_text_atomic(osp.join(opt['path']['results_root'], 'metrics.md'), table + '\n')
        print(table, flush=True)
    return results

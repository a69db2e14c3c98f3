"""Scoring models on a benchmark set: PSNR/SSIM (Y) and tOF per clip then per set, runtime per frame.

Clips are averaged as the VSR literature does: a clip's value is the mean over its frames (tOF: over its frame
pairs), a data set's value the mean over its clips. The runtime of a model on a data set is the median, over its
clips, of (forward time of the whole clip / frames), after ``warmup`` untimed runs, with CUDA synchronised.
"""
import statistics
import time
from collections import OrderedDict

from stdsr.errors import BenchmarkError
from stdsr.inference.model_loading import synchronize
from stdsr.metrics.vsr_metrics import average_over_clips, clip_metrics, tensor_to_frames


def check_model_scale(model, data):
    if model.scale != data.scale:
        raise BenchmarkError(f"scale mismatch: model '{model.label}' upscales x{model.scale} but data set "
                             f"'{data.spec.name}' has GT = LR x{data.scale} ({data.spec.describe()})")


def timed_infer(model, lq, chunk):
    synchronize(model.device)
    start = time.perf_counter()
    sr = model.infer(lq[None], chunk=chunk)
    synchronize(model.device)
    return sr[0], time.perf_counter() - start


def evaluate(models, data, args, metrics, log=print):
    """``{label: {'per_clip': {clip: {...}}, 'average': {...}, 'runtime_ms_per_frame': float}}`` for one data set."""
    for model in models:
        check_model_scale(model, data)
    results = OrderedDict((m.label, {'per_clip': OrderedDict(), 'runtimes': []}) for m in models)
    for index, (clip, _, lq, gt_frames) in enumerate(data):
        for model in models:
            if index == 0:
                for _ in range(args.warmup):
                    model.infer(lq[None], chunk=args.chunk)
            sr, seconds = timed_infer(model, lq, args.chunk)
            sr_frames = tensor_to_frames(sr)
            if sr_frames[0].shape != gt_frames[0].shape:
                raise BenchmarkError(f"model '{model.label}' output {sr_frames[0].shape[:2]} for clip '{clip}' of data "
                                     f"set '{data.spec.name}' but its GT is {gt_frames[0].shape[:2]} (scale "
                                     f'x{data.scale}): the model does not upscale by the data set\'s scale')
            runtime = 1000. * seconds / len(sr_frames)
            if data.spec.center_frame_only:
                centre = len(sr_frames) // 2
                sr_frames, gt_scored = sr_frames[centre:centre + 1], gt_frames[centre:centre + 1]
            else:
                gt_scored = gt_frames
            values = clip_metrics(sr_frames, gt_scored, args.crop_border, metrics)
            values.pop('per_frame')
            values['runtime_ms_per_frame'] = runtime
            results[model.label]['per_clip'][clip] = values
            results[model.label]['runtimes'].append(values['runtime_ms_per_frame'])
            log(f'[{data.spec.name}] {clip:<24s} {model.label:<16s} ' +
                '  '.join(f'{m}: {values[m]:.4f}' for m in metrics) + f'  {runtime:.2f} ms/frame')
    for res in results.values():
        res['average'] = average_over_clips(res['per_clip'], metrics)
        res['runtime_ms_per_frame'] = statistics.median(res.pop('runtimes'))
    return results

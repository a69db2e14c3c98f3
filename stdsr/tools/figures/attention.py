"""Figures of what distillation transferred: F^SR attention maps of teacher and students, and SR crops.

For each chosen frame of one clip, :func:`run` writes ``attention_<clip>_<frame>.png`` (as the paper's Fig. 3: rows
= networks, columns = the three channel mappings of F^SR, ``sum |F|``, ``sum |F|^2`` and ``max |F|^2``, one colour
scale per column shared by all networks) and ``crops_<clip>_<frame>.png`` (the full frame with the crop box, then
that box from bicubic, every network and GT, each titled with its PSNR-Y). F^SR is recorded with ``FeatureRecorder``
on each network's F^SR tap (``conv_last:input``, what its output conv receives). Figure sizes in pixels, with P =
``panel_px``, T = round(0.18 P), L = round(0.15 P), B = round(0.25 P): attention ``(L + 3P) x (rows (P + T) + B)``;
crops ``(columns P) x (P + T)`` (width x height). The output folder is checked before any model runs, and each
figure is written under a temporary name and renamed. ``scripts/visualize_attention.py`` is the command line.
"""
import io
import os
from os import path as osp

import cv2
import numpy as np
import torch

from stdsr.data.clip_io import natural_key
from stdsr.data.lr_degradation import downsample, mod_crop
from stdsr.errors import VisualizationError
from stdsr.losses.distill_loss import attention_map
from stdsr.archs.clip_runner import run_clip, window_indices
from stdsr.distill.feature_hooks import FeatureRecorder, UnknownModulePathError, stack_frames
from stdsr.utils.atomic_files import save_figure_atomic
from stdsr.utils.cli import UserInputError
from stdsr.inference.model_loading import BicubicUpsampler, models_from_args, resolve_device, split_label
from stdsr.utils.output_paths import check_writable_dir
from stdsr.metrics.vsr_metrics import psnr_y, tensor_to_frames
from stdsr.utils.frames import frames_to_clip

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# (column title, attention_map mapping, exponent p)
MAPPINGS = (('sum |F|', 'sum_pow', 1), ('sum |F|^2', 'sum_pow', 2), ('max |F|^2', 'max_pow', 2))
TITLE_FRAC, LABEL_FRAC, BAR_FRAC = 0.18, 0.15, 0.25


def band_sizes(panel_px):
    """(title band T, row-label band L, colour-bar band B) in pixels for panels of ``panel_px``."""
    return round(TITLE_FRAC * panel_px), round(LABEL_FRAC * panel_px), round(BAR_FRAC * panel_px)


def attention_figure_size(num_rows, panel_px):
    t, l, b = band_sizes(panel_px)
    return l + len(MAPPINGS) * panel_px, num_rows * (panel_px + t) + b


def crop_figure_size(num_columns, panel_px):
    t, _, _ = band_sizes(panel_px)
    return num_columns * panel_px, panel_px + t


# ----------------------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------------------
def read_folder(folder, what, max_frames=None):
    """Frames (uint8 BGR) and names of one clip folder, naturally sorted."""
    if not osp.isdir(folder):
        raise VisualizationError(f'{what} folder {folder} does not exist')
    files = sorted((f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)), key=natural_key)
    if not files:
        raise VisualizationError(f'{what} folder {folder} holds no image frames')
    files = files[:max_frames] if max_frames else files
    frames = []
    for name in files:
        img = cv2.imread(osp.join(folder, name), cv2.IMREAD_COLOR)
        if img is None:
            raise VisualizationError(f'cannot decode {what} frame {osp.join(folder, name)}')
        frames.append(img)
    return frames, [osp.splitext(f)[0] for f in files]


def load_clip(args, scale):
    """(LR uint8 frames, GT uint8 frames or None, frame names, clip name); GT is mod-cropped when LR is made from it."""
    gt = names = None
    if args.gt:
        gt, names = read_folder(args.gt, 'GT', args.max_frames)
    if args.lq:
        lq, lq_names = read_folder(args.lq, 'LQ', args.max_frames)
        if gt is not None and len(gt) != len(lq):
            raise VisualizationError(f'GT folder {args.gt} has {len(gt)} frames but LQ folder {args.lq} has {len(lq)}')
        names = names or lq_names
        if gt is not None and gt[0].shape[:2] != (lq[0].shape[0] * scale, lq[0].shape[1] * scale):
            raise VisualizationError(f'GT frames of {args.gt} are {gt[0].shape[1]}x{gt[0].shape[0]} but LQ x{scale} '
                                     f'(the models\' scale) is {lq[0].shape[1] * scale}x{lq[0].shape[0] * scale}')
    elif gt is not None:
        gt = [mod_crop(f, scale) for f in gt]
        lq = [downsample(f, scale, args.degradation) for f in gt]
    else:
        raise VisualizationError('give --lq FOLDER and/or --gt FOLDER (LR made from GT with --degradation)')
    clip = osp.basename(osp.normpath(args.gt or args.lq))
    return lq, gt, names, clip


def parse_indices(text, num_frames):
    if text is None:
        return [num_frames // 2]
    try:
        indices = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise VisualizationError(f"--frames must be comma-separated frame indices, got '{text}'") from None
    bad = [i for i in indices if not 0 <= i < num_frames]
    if not indices or bad:
        raise VisualizationError(f'--frames {text}: indices must lie in 0..{num_frames - 1} (the clip has {num_frames} '
                                 'frames)')
    return indices


def parse_crop(text, height, width):
    """``x,y,w,h`` in HR pixels (default: the centred square of half the shorter side), inside the frame."""
    if text is None:
        side = max(1, min(height, width) // 2)
        return (width - side) // 2, (height - side) // 2, side, side
    try:
        x, y, w, h = (int(v) for v in text.split(','))
    except ValueError:
        raise VisualizationError(f"--crop must be x,y,w,h (integers), got '{text}'") from None
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise VisualizationError(f'--crop {text} does not lie inside the {width}x{height} SR frame')
    return x, y, w, h


# ----------------------------------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def sr_and_features(model, lq, indices, layer):
    """SR frames (len(indices), 3, H, W) and F^SR (len(indices), C, H, W) of the chosen frames, on the CPU.

    A sliding-window network runs only the windows of the chosen frames (as ``run_clip`` builds them); a recurrent
    one runs the whole clip and its per-frame calls are picked out.
    """
    lq = lq.to(model.device)
    try:
        recorder = FeatureRecorder(model.net, [layer], detach=True)
    except UnknownModulePathError as err:
        raise VisualizationError(f"model '{model.label}': {err} (set it with --layer {model.label}=PATH)") from None
    with recorder:
        if model.mode == 'sliding':
            idx = window_indices(lq.shape[1], model.window, device=lq.device)[indices]
            sr = model.net(lq[0, idx])  # (len(indices), window, 3, h, w) -> one call
            feats = stack_frames(recorder.pop(layer), 1, len(indices))[0]
        else:
            sr = run_clip(model.net, lq, 'recurrent')[0, indices]
            feats = stack_frames(recorder.pop(layer), 1, lq.shape[1])[0, indices]
    return sr.float().cpu(), feats.float().cpu()


def attention_maps(feats, normalize):
    """{column title: (num_frames, H, W) numpy map} for the three mappings."""
    return {title: attention_map(feats, mapping=mapping, p=p, normalize=normalize).numpy()
            for title, mapping, p in MAPPINGS}


def layer_for(model, overrides):
    return overrides.get(model.label, overrides.get(None, model.fsr_tap))


# ----------------------------------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def draw_attention(maps_by_model, frame_pos, path, panel_px, cmap, title):
    """Rows = networks, columns = mappings, one colour scale per column (min..max over the networks)."""
    plt = _pyplot()
    labels = list(maps_by_model)
    t, l, b = band_sizes(panel_px)
    width, height = attention_figure_size(len(labels), panel_px)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    pad = 0.04 * panel_px
    for col, (column, _, _) in enumerate(MAPPINGS):
        vmin = min(float(maps_by_model[lbl][column][frame_pos].min()) for lbl in labels)
        vmax = max(float(maps_by_model[lbl][column][frame_pos].max()) for lbl in labels)
        vmax = vmax if vmax > vmin else vmin + 1e-12
        image = None
        for row, label in enumerate(labels):
            x0 = l + col * panel_px + pad
            y0 = height - (row + 1) * (panel_px + t) + pad  # from the bottom, in pixels
            ax = fig.add_axes([x0 / width, y0 / height, (panel_px - 2 * pad) / width, (panel_px - 2 * pad) / height])
            image = ax.imshow(maps_by_model[label][column][frame_pos], cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(column if row == 0 else '', fontsize=max(6, panel_px // 20))
            if col == 0:
                fig.text((l / 2) / width, (y0 + (panel_px - 2 * pad) / 2) / height, label, rotation=90, ha='center',
                         va='center', fontsize=max(6, panel_px // 20))
        cax = fig.add_axes([(l + col * panel_px + 2 * pad) / width, 0.45 * b / height,
                            (panel_px - 4 * pad) / width, 0.2 * b / height])
        bar = fig.colorbar(image, cax=cax, orientation='horizontal')
        bar.ax.tick_params(labelsize=max(5, panel_px // 28))
    fig.suptitle(title, fontsize=max(6, panel_px // 22), y=1 - 0.2 * t / height, va='top')
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def draw_crops(panels, box, path, panel_px):
    """``panels`` = [(title, uint8 BGR full frame, draw_box)]; each shows the crop (or the whole frame with the box)."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle
    t, _, _ = band_sizes(panel_px)
    width, height = crop_figure_size(len(panels), panel_px)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    pad = 0.03 * panel_px
    x, y, w, h = box
    for col, (title, frame, whole) in enumerate(panels):
        ax = fig.add_axes([(col * panel_px + pad) / width, pad / height, (panel_px - 2 * pad) / width,
                           (panel_px - 2 * pad) / height])
        rgb = frame[..., ::-1]
        if whole:
            ax.imshow(rgb)
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor='red', linewidth=1.5))
        else:
            ax.imshow(rgb[y:y + h, x:x + w], interpolation='nearest')
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=max(6, panel_px // 22))
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def psnr_title(label, sr, gt, box):
    if gt is None:
        return label
    x, y, w, h = box
    crop_psnr = psnr_y(sr[y:y + h, x:x + w], gt[y:y + h, x:x + w])
    return f'{label}\n{crop_psnr:.2f} dB (frame {psnr_y(sr, gt):.2f})'


def run(args):
    """Write the figures; returns the list of written paths."""
    for folder, what in ((args.gt, '--gt'), (args.lq, '--lq')):
        if folder is not None and not osp.isdir(folder):
            raise VisualizationError(f'{what} folder {folder} does not exist')
    try:  # before any model runs: a refusal after the figures are computed would waste them
        check_writable_dir(args.out, '--output')
    except UserInputError as err:
        raise VisualizationError(str(err)) from None
    device = resolve_device(args.device)
    models = models_from_args(args, device)
    scales = sorted({m.scale for m in models})
    if len(scales) != 1:
        raise VisualizationError(f'the networks upscale by different factors: '
                                 f'{ {m.label: m.scale for m in models} }')
    scale = scales[0]
    lq_frames, gt_frames, names, clip = load_clip(args, scale)
    indices = parse_indices(args.frames, len(lq_frames))
    overrides = dict(split_label(spec) for spec in args.layer)
    unknown = sorted(set(overrides) - {None} - {m.label for m in models})
    if unknown:
        raise VisualizationError(f'--layer names unknown model(s) {unknown}; models: {[m.label for m in models]}')
    lq = frames_to_clip(lq_frames)
    hr_h, hr_w = lq.shape[-2] * scale, lq.shape[-1] * scale
    box = parse_crop(args.crop, hr_h, hr_w)
    paths = [osp.join(args.out, f'{kind}_{clip}_{names[i]}.png') for i in indices for kind in ('attention', 'crops')]
    existing = [p for p in paths if osp.exists(p)]
    if existing and not args.overwrite:
        raise VisualizationError(f'{existing[0]} exists; pass --overwrite or choose another --output')

    maps, srs = {}, {}
    for model in models:
        sr, feats = sr_and_features(model, lq, indices, layer_for(model, overrides))
        if sr.shape[-2:] != (hr_h, hr_w):
            raise VisualizationError(f"model '{model.label}' output {sr.shape[-1]}x{sr.shape[-2]}, expected "
                                     f'{hr_w}x{hr_h} (x{scale})')
        maps[model.label] = attention_maps(feats, args.normalize)
        srs[model.label] = tensor_to_frames(sr)
    bicubic = tensor_to_frames(BicubicUpsampler(scale, args.bicubic)(lq[:, indices])[0])

    os.makedirs(args.out, exist_ok=True)
    written = []
    for pos, index in enumerate(indices):
        name = names[index]
        attention_path = osp.join(args.out, f'attention_{clip}_{name}.png')
        title = f'F^SR attention, {clip} frame {name}' + (f' ({args.normalize})' if args.normalize != 'none' else '')
        draw_attention(maps, pos, attention_path, args.panel_px, args.cmap, title)
        gt = gt_frames[index] if gt_frames is not None else None
        panels = [('frame' if gt is None else 'GT (frame)', gt if gt is not None else bicubic[pos], True),
                  (psnr_title('bicubic', bicubic[pos], gt, box), bicubic[pos], False)]
        panels += [(psnr_title(label, frames[pos], gt, box), frames[pos], False) for label, frames in srs.items()]
        if gt is not None:
            panels.append(('GT', gt, False))
        crops_path = osp.join(args.out, f'crops_{clip}_{name}.png')
        draw_crops(panels, box, crops_path, args.panel_px)
        written += [attention_path, crops_path]
    print('Wrote ' + ', '.join(written))
    return written



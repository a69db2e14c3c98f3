"""LR frames (BI or BD degradation) from a GT clip tree or a flat folder of images, mirrored as PNG.

Input ``<gt_root>/<clip>/<frame>.png`` (or a flat folder, or any deeper tree); the output mirrors it as
``<out_root>/<clip>/<frame stem>.png``. GT sides that do not divide by the scale are mod-cropped first
(bottom/right), so evaluation must mod-crop its GT the same way. The whole tree is written into a temporary
sibling folder and renamed (with ``overwrite``, swapped in for the old tree as a whole) only when every frame
is done: a corrupt GT frame stops the run naming the file and leaves no partial tree, and the old one intact.
"""
import os
from os import path as osp

import cv2
from tqdm import tqdm

from stdsr.data.lr_degradation import check_mode, check_scale, downsample
from stdsr.errors import PreparationError
from stdsr.utils.atomic_files import atomic_folder
from stdsr.utils.cli import UserInputError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def list_images(gt_root):
    """Relative paths of all images under ``gt_root``, at any depth, in sorted order.

    Covers flat folders, ``<clip>/<frame>`` trees and deeper ones such as Vimeo-90K's ``sequences/<seq>/<sub>``.
    """
    if not osp.isdir(gt_root):
        raise PreparationError(f'GT root {gt_root} does not exist')
    rel_paths = []
    for dirpath, dirnames, filenames in os.walk(gt_root):
        dirnames.sort()
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        rel_dir = osp.relpath(dirpath, gt_root)
        for name in sorted(filenames):
            if name.lower().endswith(IMG_EXTENSIONS) and not name.startswith('.'):
                rel_paths.append(osp.normpath(osp.join(rel_dir, name)))
    if not rel_paths:
        raise PreparationError(f'no images under {gt_root}')
    return rel_paths


def read_image(path):
    """Read an 8-bit image as stored (BGR/gray); a file cv2 cannot decode is an error that names the file."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise PreparationError(f'cannot decode image {path} (truncated or not an image?)')
    if img.dtype.name != 'uint8':
        raise PreparationError(f'{path} is {img.dtype}; only 8-bit images are supported')
    return img


def is_non_empty_dir(path):
    return osp.isdir(path) and any(os.scandir(path))


def check_lr_output(gt_root, out_root, overwrite):
    """The output must not lie inside the GT tree, be a file, or be a non-empty folder (unless ``overwrite``)."""
    gt_abs, out_abs = osp.realpath(gt_root), osp.realpath(out_root)
    if out_abs == gt_abs or out_abs.startswith(gt_abs + os.sep):
        raise PreparationError(f'output {out_root} must not lie inside the GT root {gt_root}')
    if osp.exists(out_root) and not osp.isdir(out_root):
        raise PreparationError(f'output {out_root} is a file')
    if is_non_empty_dir(out_root) and not overwrite:
        raise PreparationError(f'output {out_root} is not empty; pass --overwrite to replace it')
    from stdsr.utils.output_paths import check_writable_dir
    check_writable_dir(osp.dirname(osp.abspath(out_root)), 'folder of the output')


def generate_lr(gt_root, out_root, mode='BI', scale=4, overwrite=False, progress=True):
    """Degrade every GT image into ``out_root`` (PNG, same relative path and stem). Returns the count.

    A non-empty ``out_root`` is refused unless ``overwrite``; with it, the new tree replaces the old one as a
    whole (no frame of an earlier, longer or differently named run is left among the new ones).
    """
    try:
        mode, scale = check_mode(mode), check_scale(scale)
    except ValueError as err:
        raise PreparationError(str(err)) from None
    check_lr_output(gt_root, out_root, overwrite)
    rel_paths = list_images(gt_root)
    with atomic_folder(out_root, replace=osp.isdir(out_root)) as tmp:  # checked above: empty or overwrite
        for rel in tqdm(rel_paths, unit='img', desc=f'{mode}x{scale}', disable=not progress):
            lr = downsample(read_image(osp.join(gt_root, rel)), scale, mode)
            dst = osp.join(tmp, osp.splitext(rel)[0] + '.png')
            os.makedirs(osp.dirname(dst), exist_ok=True)
            if not cv2.imwrite(dst, lr):
                raise PreparationError(f'cannot write {dst}')
    return len(rel_paths)

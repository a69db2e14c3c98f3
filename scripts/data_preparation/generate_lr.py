"""Make LR frames (BI or BD degradation) from a GT clip tree or a flat folder of images.

Input ``<gt_root>/<clip>/<frame>.png`` (or a flat folder, or any deeper tree); the output mirrors it as
``<out_root>/<clip>/<frame stem>.png``. GT sides that do not divide by the scale are mod-cropped first
(bottom/right), so evaluation must mod-crop its GT the same way.

Example (Vid4 BDx4 from its GT):
    python scripts/data_preparation/generate_lr.py datasets/Vid4/GT datasets/Vid4/BDx4 --mode BD --scale 4
"""
import argparse
import os
import sys
from os import path as osp

import cv2
from tqdm import tqdm

import stdsr  # noqa: F401  (must precede basicsr: patches torchvision)
from stdsr.data.lr_degradation import MODES, SCALES, check_mode, check_scale, downsample

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def list_images(gt_root):
    """Relative paths of all images under ``gt_root``, at any depth, in sorted order.

    Covers flat folders, ``<clip>/<frame>`` trees and deeper ones such as Vimeo-90K's ``sequences/<seq>/<sub>``.
    """
    if not osp.isdir(gt_root):
        raise FileNotFoundError(f'GT root {gt_root} does not exist.')
    rel_paths = []
    for dirpath, dirnames, filenames in os.walk(gt_root):
        dirnames.sort()
        rel_dir = osp.relpath(dirpath, gt_root)
        for name in sorted(filenames):
            if name.lower().endswith(IMG_EXTENSIONS):
                rel_paths.append(osp.normpath(osp.join(rel_dir, name)))
    if not rel_paths:
        raise FileNotFoundError(f'No images under {gt_root}.')
    return rel_paths


def read_image(path):
    """Read an 8-bit image as stored (BGR/gray); a file cv2 cannot decode is an error that names the file."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'Cannot read image {path}.')
    if img.dtype.name != 'uint8':
        raise ValueError(f'{path} is {img.dtype}; only 8-bit images are supported.')
    return img


def is_non_empty_dir(path):
    return osp.isdir(path) and any(os.scandir(path))


def generate_lr(gt_root, out_root, mode='BI', scale=4, overwrite=False, progress=True):
    """Degrade every GT image into ``out_root`` (PNG, same relative path and stem). Returns the count.

    A non-empty ``out_root`` is refused unless ``overwrite``; with it, files are replaced in place and
    unrelated files already there are left alone.
    """
    mode, scale = check_mode(mode), check_scale(scale)
    gt_abs, out_abs = osp.realpath(gt_root), osp.realpath(out_root)
    if out_abs == gt_abs or out_abs.startswith(gt_abs + os.sep):
        raise ValueError(f'Output {out_root} must not lie inside the GT root {gt_root}.')
    if osp.isfile(out_root):
        raise FileExistsError(f'Output {out_root} is a file.')
    if is_non_empty_dir(out_root) and not overwrite:
        raise FileExistsError(f'Output {out_root} is not empty; pass overwrite (--overwrite) to write into it.')
    rel_paths = list_images(gt_root)
    for rel in tqdm(rel_paths, unit='img', desc=f'{mode}x{scale}', disable=not progress):
        lr = downsample(read_image(osp.join(gt_root, rel)), scale, mode)
        dst = osp.join(out_root, osp.splitext(rel)[0] + '.png')
        os.makedirs(osp.dirname(dst), exist_ok=True)
        if not cv2.imwrite(dst, lr):
            raise OSError(f'Cannot write {dst}.')
    return len(rel_paths)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('gt_root', help='<gt_root>/<clip>/<frame>.png or a flat folder of images')
    parser.add_argument('out_root', help='output root, mirrors gt_root')
    parser.add_argument('--mode', default='BI', type=str.upper, choices=MODES, help='degradation')
    parser.add_argument('--scale', default=4, type=int, choices=SCALES, help='downsampling factor')
    parser.add_argument('--overwrite', action='store_true', help='write into a non-empty output folder')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        num = generate_lr(args.gt_root, args.out_root, args.mode, args.scale, args.overwrite, not args.no_progress)
    except (FileExistsError, FileNotFoundError, OSError, ValueError) as err:
        sys.exit(f'generate_lr: {err}')
    print(f'Wrote {num} {args.mode}x{args.scale} LR images to {args.out_root}.')


if __name__ == '__main__':
    main()

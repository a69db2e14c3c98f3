"""Download model-zoo checkpoints (BasicSR's official EDVR teachers and SpyNet; the published PAN x4 teacher) into
experiments/pretrained_models, or copy them from a local folder (``--from``) so that nothing downloads.

Each file is checked against the SHA-256 prefix in its BasicSR name (PAN: the whole digest the zoo pins), written
via a resumable ``.part`` file and renamed only when complete. Without network the error says where to put a file
fetched elsewhere.

Examples:
    python scripts/download_pretrained_models.py --list
    python scripts/download_pretrained_models.py EDVR_L_x4_SR_Vimeo90K_official
    python scripts/download_pretrained_models.py EDVR flownet           # groups: EDVR, flownet, all
    python scripts/download_pretrained_models.py all --mirror https://my.host/basicsr_zoo
    python scripts/download_pretrained_models.py PANx4_DF2K --from /data/weights --root ../shared/pretrained
"""
import argparse
import sys

from stdsr.tools.downloads.model_zoo import DEFAULT_ROOT, GROUPS, ZOO, DownloadError, fetch, local_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='*', help='zoo names (with or without -<hash>.pth) or groups: '
                        + ', '.join(GROUPS))
    parser.add_argument('--list', action='store_true', help='print the known files and exit')
    parser.add_argument('--root', default=DEFAULT_ROOT, help='target folder (BasicSR layout <root>/<group>/<file>)')
    parser.add_argument('--mirror', help='base URL holding <group>/<file> instead of Google Drive')
    parser.add_argument('--overwrite', action='store_true', help='fetch again a present file whose hash is wrong')
    parser.add_argument('--from', dest='source_dir', help='copy the files (by file name) from this local folder '
                        'instead of downloading them; the hash is checked the same way')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list or not args.names:
        for name in ZOO:
            print(f'{name:<36s} {local_path(name, args.root)}')
        return 0
    try:
        fetch(args.names, args.root, args.mirror, args.overwrite, source_dir=args.source_dir)
    except DownloadError as err:
        sys.exit(f'download_pretrained_models: error: {err}')
    return 0

"""Download BasicSR model-zoo checkpoints (official EDVR teachers, SpyNet) into experiments/pretrained_models.

Each file is checked against the SHA-256 prefix in its BasicSR name, written via a resumable ``.part`` file and
renamed only when complete. Without network the error says where to put a file fetched elsewhere.

Examples:
    python scripts/download_pretrained_models.py --list
    python scripts/download_pretrained_models.py EDVR_L_x4_SR_Vimeo90K_official
    python scripts/download_pretrained_models.py EDVR flownet           # groups: EDVR, flownet, all
    python scripts/download_pretrained_models.py all --mirror https://my.host/basicsr_zoo
"""
import sys

from stdsr.tools.download_pretrained_models import main

if __name__ == '__main__':
    sys.exit(main())

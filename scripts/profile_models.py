"""Parameters, FLOPs and runtime per output frame, and the F^SR tap, of the networks of option files.

Examples::

    python scripts/profile_models.py -opt options/train/STD/students/demo/train_VSRNet_STD_demo.yml
    python scripts/profile_models.py -opt A.yml B.yml:network_t --net network_g --device cpu --repeats 5
    python scripts/profile_models.py --arch "{type: BasicVSR, num_feat: 64, num_block: 30, spynet_path: ~}"

The command line over :mod:`stdsr.tools.profile_models`. ``-opt FILE[:network_x]`` takes the network key
after a colon, else every key of ``--net``. ``--arch`` takes inline YAML network sections. Every row is per output
frame: a sliding network reads its own window (``num_frame``) and returns 1 frame; a recurrent one reads ``t``
frames of ``--shape`` and returns t.
"""
import sys

from stdsr.tools.profile_models import main

if __name__ == '__main__':
    sys.exit(main())

"""Score a distillation run's teacher on its validation set against bicubic, before the long run starts.

Reads a training option file (``network_t``, ``path.pretrain_network_t``, ``datasets.val``), loads the teacher
exactly as training does (strict), and prints the teacher's and bicubic's Y-PSNR. Exits with an error when the
teacher is worse than bicubic, unless --allow-worse-than-bicubic.

    python scripts/check_teacher.py -opt options/train/STD/zoo/train_VESPCN_STD_x4_Vimeo90K_EDVRL.yml --max-clips 2
"""
import sys

from stdsr.tools.check_teacher import main

if __name__ == '__main__':
    sys.exit(main())
